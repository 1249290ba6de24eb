// The mount's own metrics (glusterfs --metrics-port): fops the kernel sends are counted at the top
// of the client graph, bytes written add up exactly, and a server restart shows as one reconnect.
// Also: SIGUSR2 alone cycles the mount's log level.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startBrickServer, stopAllServers, type ServerProc } from "../helpers/servers";
import { mountVolfile, type Mounted } from "../helpers/mount";
import { waitUntil } from "./afr-seed-cluster";

const PORT = 24610;
const METRICS = 24611;

function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

const scrape = async () => (await fetch(`http://127.0.0.1:${METRICS}/metrics`)).text();

/** How many fops of a kind succeeded at the top of the mount's graph ("wb", or what the CLI stacks on it). */
async function topFopCounter(): Promise<(fop: string) => Promise<number>> {
  const top = /^gluster_ha_fops_total\{volume="(wb[^"]*)",fop="create"/m.exec(await scrape())?.[1];
  assert.ok(top, "the mount's top volume has counted creates");
  return async (fop) => sample(await scrape(), "gluster_ha_fops_total", { volume: top, fop, result: "ok" });
}

let mount: Mounted | undefined;
after(async () => {
  await mount?.unmount();
  await stopAllServers();
});

test("the mount exposes metrics: bytes written add up, a server restart counts one reconnect", async () => {
  let server: ServerProc = await startBrickServer({ host: "127.0.0.2", port: PORT });
  const volfile = [
    "volume c", "  type protocol/client", "  option remote-host 127.0.0.2", `  option remote-port ${PORT}`,
    "  option remote-subvolume locks", "  option transport-timeout 5", "end-volume",
    "volume wb", "  type performance/write-behind", "  subvolumes c", "end-volume", "",
  ].join("\n");
  mount = await mountVolfile(volfile, { args: ["--metrics-port", String(METRICS)] });
  const data = Buffer.alloc(100_000, 1);
  writeFileSync(join(mount.mountpoint, "f"), data);
  assert.ok(readFileSync(join(mount.mountpoint, "f")).equals(data));
  const m = await scrape();
  // The label is the mount's top volume: "wb", or what the CLI stacks on it (wb-md-cache).
  const top = /^gluster_ha_written_bytes_total\{volume="(wb[^"]*)"\}/m.exec(m)?.[1];
  assert.ok(top, m);
  assert.equal(sample(m, "gluster_ha_written_bytes_total", { volume: top }), 100_000);
  assert.ok(sample(m, "gluster_ha_fops_total", { volume: top, fop: "write", result: "ok" }) >= 1);
  assert.equal(sample(m, "gluster_ha_fops_total", { volume: top, fop: "create", result: "ok" }), 1);
  assert.equal(sample(m, "gluster_ha_connections", { volume: "c" }), 1);
  assert.equal(sample(m, "gluster_ha_reconnects_total", { volume: "c" }), 0);
  assert.match(await mount.log(), /"msgid":"METRICS_LISTENING"/);

  const brick = server.brick;
  await server.kill();
  assert.ok(await waitUntil(async () => sample(await scrape(), "gluster_ha_connections", { volume: "c" }) === 0, 5000));
  server = await startBrickServer({ host: "127.0.0.2", port: PORT, brick });
  assert.ok(await waitUntil(async () => sample(await scrape(), "gluster_ha_reconnects_total", { volume: "c" }) === 1, 15_000), "one reconnect counted");
  assert.equal(sample(await scrape(), "gluster_ha_connections", { volume: "c" }), 1);

  // kill -USR2 alone: info -> debug.
  mount.child.kill("SIGUSR2");
  assert.ok(await waitUntil(async () => /"msgid":"LOG_LEVEL_CHANGED","from":"info","to":"debug"/.test(await mount!.log()), 3000), await mount.log());
});

test("a directory listed once is read from the graph once: the kernel's last READDIR is answered from the handle's batch", async () => {
  assert.ok(mount, "mounted by the test before");
  const dir = join(mount.mountpoint, "listed");
  mkdirSync(dir);
  // more entries than one READDIRPLUS page (the kernel reads a page per request)
  for (let i = 0; i < 300; i++) writeFileSync(join(dir, `f${i}`), "");
  const count = await topFopCounter();
  const readdirs = () => count("readdir");
  const before = await readdirs();
  const names = readdirSync(dir);
  assert.equal(names.length, 300);
  assert.equal(new Set(names).size, 300);
  assert.equal(await readdirs() - before, 1, "one readdir of the graph for the whole listing (the kernel asks once more, past its end)");
  // A second pass (a new opendir) sees a name made since.
  writeFileSync(join(dir, "new"), "");
  assert.ok(readdirSync(dir).includes("new"));
  assert.equal(await readdirs() - before, 2);
});

test("a directory's listing travels right behind its opendir (one readdir of the graph per listing), and is not served once something changed before the first readdir", async () => {
  assert.ok(mount, "mounted by the test before");
  const dir = join(mount.mountpoint, "prefetched");
  mkdirSync(dir);
  for (let i = 0; i < 10; i++) writeFileSync(join(dir, `f${i}`), "");
  const count = await topFopCounter();
  const [readdirs, opendirs] = [await count("readdir"), await count("opendir")];
  assert.equal(readdirSync(dir).length, 10);
  assert.deepEqual([await count("opendir") - opendirs, await count("readdir") - readdirs], [1, 1], "the prefetched listing was the one used");
  // opendir (its listing is fetched at once), then a name is made, then rewinddir: the pass must show the name
  const perl = spawnSync("perl", ["-e", `
opendir(my $d, $ARGV[0]) or die;
open(my $f, ">", "$ARGV[0]/late") or die; close($f);
rewinddir($d); my @all = grep { !/^\\./ } readdir($d);
print scalar(@all), " ", (grep { $_ eq "late" } @all) ? "late" : "-", "\\n";`, dir], { encoding: "utf8" });
  assert.equal(perl.stdout.trim(), "11 late", perl.stderr);
  assert.equal(await count("readdir") - readdirs, 3, "the listing fetched before the change was not used: the pass asked again");
});
