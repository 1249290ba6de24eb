// gluster-ha probe HOST:PORT VOLUME [--timeout S]: how the Pulumi component waits for servers.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { parseHostPort } from "../../runtime/cli/commands/probe";
import { REPO, startBrickServer, stopAllServers } from "../helpers/servers";

after(stopAllServers);

function probe(args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "runtime/cli/gluster-ha.ts"), "probe", ...args], { cwd: REPO });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  return new Promise((r) => child.on("exit", (code) => r({ code, stderr, ms: Date.now() - t0 })));
}

test("probe waits for a server that starts later and exits 0 once it answers the handshake", async () => {
  const waiting = probe(["127.0.0.2:24165", "locks", "--timeout", "20"]);
  await new Promise((r) => setTimeout(r, 1500));
  await startBrickServer({ host: "127.0.0.2", port: 24165, allow: { locks: "127.0.0.1" } });
  const r = await waiting;
  assert.equal(r.code, 0, r.stderr);
});

test("probe exits 1 with the refusal when the volume is not granted, after its timeout", async () => {
  await startBrickServer({ host: "127.0.0.3", port: 24166, allow: { locks: "127.0.0.1" } });
  const r = await probe(["127.0.0.3:24166", "ds", "--timeout", "1"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /EACCES/);
  const none = await probe(["127.0.0.3:24167", "locks", "--timeout", "1"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /ECONNREFUSED/);
});

test("HOST:PORT parsing", () => {
  assert.deepEqual(parseHostPort("127.0.0.2:24007"), { host: "127.0.0.2", port: 24007 });
  assert.deepEqual(parseHostPort("[::1]:7"), { host: "::1", port: 7 });
  assert.deepEqual(parseHostPort("node1"), { host: "node1", port: 6996 });
  assert.equal(parseHostPort("node1:0"), undefined);
  assert.equal(parseHostPort("a:b:c"), undefined);
});
