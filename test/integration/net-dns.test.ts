// remote-host as a name with several addresses (the seed's round-robin DNS), through the system resolver.
// The machine's /etc/hosts is never edited: the client runs in its own mount namespace (unshare -m) where a
// private hosts file is bind-mounted over /etc/hosts, visible to that process only.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clientVolfile, spawnHelper, startBrickServer, stopAllServers, tempDir, waitForLine } from "../helpers/servers";

after(stopAllServers);

const NAME = "cluster.gha-test.internal";

async function connectOnceByName(dir: string): Promise<{ addresses: string[]; connected: string }> {
  const hosts = join(dir, "hosts");
  const vol = join(dir, "client.vol");
  const wrap = ["unshare", "-m", "sh", "-c", `mount --bind ${hosts} /etc/hosts && exec "$@"`, "sh"];
  const child = spawnHelper(["connect-once", vol], wrap);
  return JSON.parse(await waitForLine(child, /^\{/)) as { addresses: string[]; connected: string };
}

test("a name with several addresses resolves through the system resolver and fails over to the next address", async () => {
  const before = readFileSync("/etc/hosts", "utf8");
  const a = await startBrickServer({ host: "127.0.0.2", port: 24150 });
  await startBrickServer({ host: "127.0.0.3", port: 24150 });
  const dir = tempDir();
  writeFileSync(join(dir, "hosts"), `127.0.0.1 localhost\n127.0.0.2 ${NAME}\n127.0.0.3 ${NAME}\n`);
  writeFileSync(join(dir, "client.vol"), clientVolfile({ hosts: NAME, port: 24150, timeout: 3 }));

  const first = await connectOnceByName(dir);
  assert.deepEqual(first.addresses, ["127.0.0.2", "127.0.0.3"]);
  assert.equal(first.connected, "127.0.0.2:24150");

  await a.kill();
  const second = await connectOnceByName(dir);
  assert.equal(second.connected, "127.0.0.3:24150");
  assert.equal(readFileSync("/etc/hosts", "utf8"), before, "the machine's /etc/hosts is untouched");
});
