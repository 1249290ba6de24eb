// Server-side AFR with two writers on different servers: client A mounts through node1, client B
// through node2, both write overlapping ranges of one file at once. The transaction locks (taken in
// brick-identity order on both servers) must leave the two replicas byte-identical.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { mountVolfile } from "../helpers/mount";
import { seedClientVolfile, startSeedCluster, waitUntil } from "./afr-seed-cluster";

const PORT = 24260;

test("two clients writing one file through different servers leave identical replicas", async (t) => {
  const c = await startSeedCluster({ port: PORT, clientHosts: "127.0.0.3" });
  t.after(() => c.close());
  const other = await mountVolfile(seedClientVolfile({ port: PORT, hosts: "127.0.0.2" }));
  t.after(() => other.unmount());
  const size = 4 << 20;
  writeFileSync(join(c.mount.mountpoint, "shared.bin"), Buffer.alloc(size));
  const writer = async (mnt: string, seed: number) => {
    const fh = await open(join(mnt, "shared.bin"), "r+");
    try {
      for (let k = 0; k < 150; k++) {
        const off = ((k * 7919 + seed * 104729) % (size / 4096 - 16)) * 4096;
        await fh.write(randomBytes(65536), 0, 65536, off);
      }
    } finally {
      await fh.close();
    }
  };
  await Promise.all([writer(c.mount.mountpoint, 1), writer(other.mountpoint, 2)]);
  const a = readFileSync(join(c.bricks[0], "shared.bin"));
  const b = readFileSync(join(c.bricks[1], "shared.bin"));
  assert.equal(a.length, size);
  assert.ok(a.equals(b), "replicas byte-identical");
  // The last batch's post-op may still run after close() (delayed post-op; the kernel's release is
  // asynchronous): the marks must be gone shortly after.
  const clear = () => [c.blame(1, 2, "shared.bin"), c.blame(2, 1, "shared.bin")].every((b) => b.every((v) => v === 0));
  assert.ok(await waitUntil(clear, 3000), `no blame left: ${c.blame(1, 2, "shared.bin")} / ${c.blame(2, 1, "shared.bin")}`);
});
