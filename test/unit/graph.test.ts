import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, FopError } from "../../runtime/core/errors";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { defineXlator, Xlator, type ReconfigureResult, type XlatorDef, type XlatorInit } from "../../runtime/core/xlator";
import { checkVolfile, parseVolfile, type XlatorCatalog } from "../../runtime/volfile";

const events: string[] = [];

class Recorder extends Xlator {
  readonly seenGraph: ReadonlyMap<string, Xlator>;
  constructor(init: XlatorInit<Record<string, unknown>>) {
    super(init);
    this.seenGraph = init.graph;
    if (init.options.fail === "init") throw this.configError("refusing to init", "fail");
  }
  override async start(): Promise<void> {
    if (this.options.fail === "start") throw new FopError("EADDRINUSE", "cannot start", { xlator: this.name });
    events.push(`start ${this.name}`);
  }
  override async stop(): Promise<void> {
    events.push(`stop ${this.name}`);
  }
  override reconfigure(options: Record<string, unknown>): ReconfigureResult {
    const applied = options.live !== this.options.live ? ["live"] : [];
    const needsRestart = options.fixed !== this.options.fixed ? ["fixed"] : [];
    this.options = options;
    return { applied, needsRestart };
  }
  override dump(): Record<string, unknown> {
    if (this.options.fail === "dump") throw new Error("dump broke");
    return { live: this.options.live };
  }
}

const schema = {
  type: "object", additionalProperties: false,
  properties: {
    live: { type: "integer", "x-volfile": "int", default: 1, "x-live": true },
    fixed: { type: "integer", "x-volfile": "int", default: 1 },
    fail: { type: "string", "x-volfile": "string" },
  },
};
const leaf = defineXlator<Record<string, unknown>>({ type: "test/leaf", schema, children: { min: 0, max: 0 }, init: (i) => new Recorder(i) });
const node = defineXlator<Record<string, unknown>>({ type: "test/node", schema, children: { min: 1, max: 4 }, init: (i) => new Recorder(i) });
const defs = new Map<string, XlatorDef<any>>([["test/leaf", leaf], ["test/node", node]]);
const catalog: XlatorCatalog = { find: (t) => defs.get(t), types: [...defs.keys()] };
const opts = { log: silentLogger(), findXlator: (t: string) => defs.get(t) };

const VOLFILE = `
volume a
  type test/leaf
end-volume
volume b
  type test/leaf
  option live 5
end-volume
volume pair
  type test/node
  subvolumes a b
end-volume
volume top
  type test/node
  subvolumes pair
end-volume
`;
const check = (text: string) => checkVolfile(parseVolfile(text, "g.vol"), catalog);

test("build wires children bottom-up, shares one graph map, and gives each a volume logger", () => {
  const g = Graph.build(check(VOLFILE), opts);
  assert.equal(g.top.name, "top");
  assert.deepEqual([...g.volumes.keys()], ["a", "b", "pair", "top"]);
  assert.deepEqual(g.volumes.get("pair")!.children.map((c) => c.name), ["a", "b"]);
  assert.deepEqual(g.volumes.get("a")!.parents.map((p) => p.name), ["pair"]);
  assert.equal((g.volumes.get("a") as Recorder).seenGraph, (g.volumes.get("top") as Recorder).seenGraph);
  assert.equal((g.volumes.get("a") as Recorder).seenGraph.get("top"), g.top);
  assert.equal(g.volumes.get("b")!.options.live, 5);
  assert.equal(g.volumes.get("b")!.options.fixed, 1);
  assert.deepEqual(g.volumes.get("b")!.log.bindings(), { volume: "b" });
});

test("start runs bottom-up, stop top-down and only once", async () => {
  const g = Graph.build(check(VOLFILE), opts);
  events.length = 0;
  await g.start();
  assert.deepEqual(events, ["start a", "start b", "start pair", "start top"]);
  events.length = 0;
  await Promise.all([g.stop(), g.stop()]);
  await g.stop();
  assert.deepEqual(events, ["stop top", "stop pair", "stop b", "stop a"]);
});

test("a failing start stops what already started and rethrows", async () => {
  const g = Graph.build(check(VOLFILE.replace("option live 5", "option fail start")), opts);
  events.length = 0;
  await assert.rejects(g.start(), (e: unknown) => e instanceof FopError && e.code === "EADDRINUSE");
  assert.deepEqual(events, ["start a", "stop a"]);
});

test("a translator's own ConfigError from init gets the volfile's file:line", () => {
  assert.throws(() => Graph.build(check(VOLFILE.replace("option live 5", "option fail init")), opts), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.where?.line, 7);
    assert.equal(e.where?.option, "fail");
    assert.match(e.message, /^g\.vol:7: volume "b": refusing to init/);
    return true;
  });
});

test("fromText checks first: a bad volfile never instantiates anything", () => {
  assert.throws(() => Graph.fromText("volume a\ntype no/such\nend-volume\n", "x.vol", { log: silentLogger() }),
    (e: unknown) => e instanceof ConfigError && e.where?.line === 2);
});

test("build refuses a children count its def does not take", () => {
  const v = check(VOLFILE);
  const strict = { ...opts, findXlator: (t: string) => (t === "test/node" ? { ...node, children: { min: 1, max: 1 } } : defs.get(t)) };
  assert.throws(() => Graph.build(v, strict), (e: unknown) => e instanceof ConfigError && e.where?.line === 9);
});

test("reconfigure with the same shape passes new options to each translator", () => {
  const g = Graph.build(check(VOLFILE), opts);
  const r = g.reconfigure(check(VOLFILE.replace("option live 5", "option live 6\noption fixed 2")));
  assert.deepEqual(r, { applied: ["b:live"], needsRestart: ["b:fixed"] });
  assert.equal(g.volumes.get("b")!.options.live, 6);
  assert.deepEqual(g.reconfigure(check(VOLFILE.replace("option live 5", "option live 6\noption fixed 2"))), { applied: [], needsRestart: [] });
});

test("reconfigure with a changed shape reports every volume as needing restart and changes nothing", () => {
  const g = Graph.build(check(VOLFILE), opts);
  const swapped = VOLFILE.replace("subvolumes a b", "subvolumes b a").replace("option live 5", "option live 9");
  assert.deepEqual(g.reconfigure(check(swapped)), { applied: [], needsRestart: ["a", "b", "pair", "top"] });
  assert.equal(g.volumes.get("b")!.options.live, 5);
  const retyped = VOLFILE.replace("volume top\n  type test/node\n  subvolumes pair", "volume top\n  type test/node\n  subvolumes pair a");
  assert.equal(g.reconfigure(check(retyped)).needsRestart.length, 4);
  const renamed = VOLFILE.replaceAll("pair", "duo");
  assert.deepEqual(g.reconfigure(check(renamed)).needsRestart.sort(), ["a", "b", "duo", "pair", "top"]);
});

test("dump collects every translator's state by volume name, a broken one shows its error", () => {
  const g = Graph.build(check(VOLFILE.replace("option live 5", "option fail dump")), opts);
  assert.deepEqual(g.dump(), { a: { live: 1 }, b: { error: "dump broke" }, pair: { live: 1 }, top: { live: 1 } });
});

test("fromFile builds the real translators of a posix/locks/io-threads volfile", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gha-graph-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "brick.vol");
  writeFileSync(file, [
    "volume ds", "type storage/posix", `option directory ${join(dir, "brick")}`, "end-volume",
    "volume locks", "type features/locks", "subvolumes ds", "end-volume",
    "volume io", "type performance/io-threads", "option thread-count 4", "subvolumes locks", "end-volume",
  ].join("\n"));
  const g = Graph.fromFile(file, { log: silentLogger() });
  t.after(() => g.stop());
  assert.equal(g.top.type, "performance/io-threads");
  assert.equal(g.volumes.get("locks")!.type, "features/posix-locks");
  assert.equal(g.top.options["thread-count"], 4);
  await g.start();
  assert.equal(typeof g.dump(), "object");
});

test("a translator whose reconfigure throws is reported as needing restart, the others still apply", () => {
  const g = Graph.build(check(VOLFILE), opts);
  (g.volumes.get("a") as Recorder).reconfigure = () => { throw new Error("cannot"); };
  const r = g.reconfigure(check(VOLFILE.replace("option live 5", "option live 7")));
  assert.deepEqual(r, { applied: ["b:live"], needsRestart: ["a"] });
});
