// Listings read ahead during a tree walk (runtime/fuse/kernel/listings-ahead.ts), on a real mount of
// a brick served over TCP: a walk gets the next sibling directories' listings fetched ahead and sees
// exactly what is there; a change made after a listing was fetched ahead is seen; listing a single
// directory reads nothing ahead; handles not used are closed again.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { startBrickServer, stopAllServers } from "../helpers/servers";
import { mountVolfile, statedumpOf, type Mounted } from "../helpers/mount";

const PORT = 24620;

interface AheadDump { fetched: number; used: number; dropped: number; pending: number }

let m: Mounted;

before(async () => {
  await startBrickServer({ host: "127.0.0.2", port: PORT });
  const volfile = [
    "volume c", "  type protocol/client", "  option remote-host 127.0.0.2", `  option remote-port ${PORT}`,
    "  option remote-subvolume locks", "  option transport-timeout 5", "end-volume", "",
  ].join("\n");
  m = await mountVolfile(volfile);
});

after(async () => {
  await m?.unmount();
  await stopAllServers();
});

async function aheadDump(): Promise<AheadDump> {
  return ((await statedumpOf(m)) as { fuse: { listingsAhead: AheadDump } }).fuse.listingsAhead;
}

/** Every entry listed and lstat'ed, depth first, in listing order (find) or by name (ls -R); returns the paths seen. */
function walk(dir: string, sorted: boolean, seen: string[] = []): string[] {
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  if (sorted) entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const p = join(dir, e.name);
    fs.lstatSync(p);
    seen.push(p);
    if (e.isDirectory()) walk(p, sorted, seen);
  }
  return seen;
}

function makeTree(root: string, dirs: number, files: number): string[] {
  const made: string[] = [];
  fs.mkdirSync(root);
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${String(d).padStart(2, "0")}`);
    fs.mkdirSync(dir);
    made.push(dir);
    for (let f = 0; f < files; f++) {
      fs.writeFileSync(join(dir, `f${f}`), `${d}/${f}`);
      made.push(join(dir, `f${f}`));
    }
  }
  return made;
}

for (const sorted of [false, true]) {
  test(`a tree walk ${sorted ? "by name (ls -R)" : "in listing order (find)"} finds its next directories listed ahead, and sees exactly what is there`, async () => {
    const root = join(m.mountpoint, sorted ? "walk-sorted" : "walk");
    const made = makeTree(root, 12, 30);
    fs.writeFileSync("/proc/sys/vm/drop_caches", "3");
    const a = await aheadDump();
    const seen = walk(root, sorted);
    const b = await aheadDump();
    assert.deepEqual([...seen].sort(), [...made].sort(), "every entry, once");
    // from the second descent on, the walk's order is known: every next directory comes listed ahead
    assert.ok(b.used - a.used >= 9, `${b.used - a.used} of 11 directories came listed ahead`);
    assert.ok(b.fetched - a.fetched <= 11 + 4, `${b.fetched - a.fetched} listed ahead: no more than the walk could use`);
    // handles listed ahead and not opened are closed again within seconds
    for (let i = 0; i < 60 && (await aheadDump()).pending > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await aheadDump()).pending, 0);
  });
}

test("a change after a listing was fetched ahead is seen by the walk; listing one directory reads nothing ahead", async () => {
  const root = join(m.mountpoint, "change");
  makeTree(root, 6, 5);
  fs.writeFileSync("/proc/sys/vm/drop_caches", "3");
  const a = await aheadDump();
  assert.deepEqual(fs.readdirSync(root).sort(), ["d00", "d01", "d02", "d03", "d04", "d05"]);
  assert.equal((await aheadDump()).fetched, a.fetched, "one directory listed: nothing read ahead");
  assert.equal(fs.readdirSync(join(root, "d00")).length, 5); // the descent: d01 and d02 (by name) are listed ahead
  for (let i = 0; i < 50 && (await aheadDump()).fetched - a.fetched < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok((await aheadDump()).fetched - a.fetched >= 2);
  await new Promise((r) => setTimeout(r, 200)); // (their listings are in)
  fs.writeFileSync(join(root, "d01", "new"), "x");
  fs.unlinkSync(join(root, "d02", "f0"));
  const used = (await aheadDump()).used;
  assert.ok(fs.readdirSync(join(root, "d01")).includes("new"), "a file made after the listing was fetched ahead");
  assert.ok(!fs.readdirSync(join(root, "d02")).includes("f0"), "a file removed after the listing was fetched ahead");
  assert.equal((await aheadDump()).used - used, 2, "both handles opened ahead were used, their listings fetched again");
  assert.deepEqual(fs.readdirSync(join(root, "d03")).sort(), ["f0", "f1", "f2", "f3", "f4"]);
});
