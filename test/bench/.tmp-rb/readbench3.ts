import { readFileSync } from "node:fs";
import { Graph } from "../../../runtime/core/graph";
import { silentLogger } from "../../../runtime/core/log";
import { Fd } from "../../../runtime/core/types";
import { clientVolfile, startBrickServer, stopAllServers } from "../../helpers/servers";
const CTX = { uid: 0, gid: 0, pid: process.pid, lkOwner: "b", client: "local" };
const ticks = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" "); return [Number(f[11]) * 10, Number(f[12]) * 10]; };
(async () => {
  const brick = `/var/tmp/gha-rb-${process.pid}`;
  const srv = await startBrickServer({ host: "127.0.0.2", port: 24193, brick, posixOptions: ["fsync off"], allow: { locks: "127.0.0.*" } });
  const g = Graph.fromText(clientVolfile({ hosts: "127.0.0.2", port: 24193, timeout: 30 }), "c.vol", { log: silentLogger() });
  await g.start();
  const c = g.top; const chunk = 131072; const fd = new Fd("/b.bin", 0o2 | 0o100);
  await c.create(CTX, { path: "/b.bin" }, fd.flags, 0o644, fd);
  const data = Buffer.alloc(chunk, 1);
  for (let i = 0; i < 4096; i++) await c.write(CTX, fd, data, i * chunk);
  for (const op of ["read", "write", "read", "write"]) {
    let next = 0; const total = 16384; const t0 = Date.now(); const c0 = process.cpuUsage(); const s0 = ticks(srv.child.pid!);
    await Promise.all(Array.from({ length: 16 }, async () => { while (next < total) { const i = next++; if (op === "read") await c.read(CTX, fd, chunk, (i % 4096) * chunk); else await c.write(CTX, fd, data, (i % 4096) * chunk); } }));
    const cu = process.cpuUsage(c0); const s1 = ticks(srv.child.pid!);
    console.log(op, "MB/s", (total * chunk / 1e6 / ((Date.now() - t0) / 1000)).toFixed(0), "wall", Date.now() - t0, "client user/sys", cu.user / 1000 | 0, cu.system / 1000 | 0, "server user/sys", s1[0]! - s0[0]!, s1[1]! - s0[1]!);
  }
  await g.stop(); await stopAllServers();
  require("fs").rmSync(brick, { recursive: true, force: true });
})();
