import { Graph } from "../../../runtime/core/graph";
import { silentLogger } from "../../../runtime/core/log";
import { Fd } from "../../../runtime/core/types";
import { brickVolfile, clientVolfile } from "../../helpers/servers";
const CTX = { uid: 0, gid: 0, pid: process.pid, lkOwner: "b", client: "local" };
(async () => {
  const brick = `/var/tmp/gha-rb-${process.pid}`;
  const s = Graph.fromText(brickVolfile({ host: "127.0.0.2", port: 24192, brick, posixOptions: ["fsync off"], allow: { locks: "127.0.0.*" } }), "s.vol", { log: silentLogger() });
  await s.start();
  const g = Graph.fromText(clientVolfile({ hosts: "127.0.0.2", port: 24192, timeout: 30 }), "c.vol", { log: silentLogger() });
  await g.start();
  const c = g.top; const chunk = 131072; const fd = new Fd("/b.bin", 0o2 | 0o100);
  await c.create(CTX, { path: "/b.bin" }, fd.flags, 0o644, fd);
  const data = Buffer.alloc(chunk, 1);
  for (let i = 0; i < 4096; i++) await c.write(CTX, fd, data, i * chunk);
  for (const op of ["read", "write"]) {
  let next = 0; const total = 16384; const t0 = Date.now();
  await Promise.all(Array.from({ length: 16 }, async () => { while (next < total) { const i = next++; if (op === "read") await c.read(CTX, fd, chunk, (i % 4096) * chunk); else await c.write(CTX, fd, data, (i % 4096) * chunk); } }));
  console.log(op, "MB/s", (total * chunk / 1e6 / ((Date.now() - t0) / 1000)).toFixed(0));
  }
  await g.stop(); await s.stop();
  require("fs").rmSync(brick, { recursive: true, force: true });
})();
