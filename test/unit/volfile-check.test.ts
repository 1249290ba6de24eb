import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../../runtime/core/errors";
import { defineXlator, Xlator } from "../../runtime/core/xlator";
import {
  checkVolfile, collectVolfileErrors, loadVolfile, parseVolfile, type XlatorCatalog,
} from "../../runtime/volfile";
import { templatesOf } from "../../runtime/volfile/schema";

const SEED = join(__dirname, "..", "fixtures", "seed");

// Test translators: one property of each x-volfile kind, a pattern, an alias, a required option.
const leaf = defineXlator({
  type: "test/leaf",
  schema: {
    type: "object", additionalProperties: false, required: ["dir"],
    properties: {
      dir: { type: "string", "x-volfile": "path" },
      size: { type: "integer", "x-volfile": "size", default: 131072, minimum: 4096, maximum: 4194304 },
      count: { type: "integer", "x-volfile": "int", default: 4, minimum: 1, maximum: 64, "x-aliases": ["page-count"] },
      flag: { type: "boolean", "x-volfile": "bool", default: false },
      timeout: { type: "number", "x-volfile": "duration", default: 42, minimum: 0.5 },
      mode: { type: "string", "x-volfile": "enum", enum: ["none", "auto"], default: "none" },
      label: { type: "string", "x-volfile": "string" },
      hosts: { type: "array", items: { type: "string" }, "x-volfile": "address-list", minItems: 1 },
    },
  },
  children: { min: 0, max: 0 },
  init: (init) => new Xlator(init),
});
const top = defineXlator({
  type: "test/top",
  schema: {
    type: "object", additionalProperties: false, properties: {},
    patternProperties: { "^auth\\.ip\\.[^\\s]+\\.(allow|reject)$": { type: "array", items: { type: "string" }, "x-volfile": "address-list" } },
  },
  children: { min: 1, max: 2 },
  init: (init) => new Xlator(init),
});
const CATALOG: XlatorCatalog = {
  find: (t) => (t === "test/leaf" || t === "test/alias" ? leaf : t === "test/top" ? top : undefined),
  types: ["test/alias", "test/leaf", "test/top"],
};

function errorsOf(text: string): ConfigError[] {
  return collectVolfileErrors(parseVolfile(text, "t.vol"), CATALOG);
}
function leafWith(...options: string[]): string {
  return ["volume a", "type test/leaf", "option dir /x", ...options, "end-volume"].join("\n");
}
function onlyError(text: string): ConfigError {
  const errors = errorsOf(text);
  assert.equal(errors.length, 1, errors.map((e) => e.message).join("\n"));
  return errors[0]!;
}

test("the seed's node1-server.vol fails on line 35 suggesting auth.ip.gfs-ds-locks.allow", () => {
  const file = join(SEED, "node1-server.vol");
  assert.throws(() => loadVolfile(file), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.where?.line, 35);
    assert.ok(err.message.startsWith(`${file}:35: `), err.message);
    assert.match(err.message, /did you mean "auth\.ip\.gfs-ds-locks\.allow"/);
    return true;
  });
});

test("the seed's node2-server.vol and client.vol check clean", () => {
  const node2 = loadVolfile(join(SEED, "node2-server.vol"));
  assert.equal(node2.top, "server");
  assert.deepEqual(node2.volumes.map((v) => v.name), ["gfs-ds", "gfs-ds-locks", "gfs-node1-ds", "gfs-ds-afr", "gfs", "server"]);
  const gfs = node2.volumes.find((v) => v.name === "gfs")!;
  assert.equal(gfs.type, "performance/io-threads");
  assert.equal(gfs.options["cache-size"], 64 * 1024 * 1024);
  assert.equal(gfs.options["thread-count"], 8);
  const server = node2.volumes.find((v) => v.name === "server")!;
  assert.deepEqual(server.options["auth.ip.gfs-ds-locks.allow"], ["10.0.0.*", "127.0.0.1"]);
  assert.equal(server.options["transport-type"], "tcp/server");
  const node1ds = node2.volumes.find((v) => v.name === "gfs-node1-ds")!;
  assert.deepEqual(node1ds.options["remote-host"], ["10.0.0.2"]);
  assert.equal(node1ds.options["transport-timeout"], 5);

  const client = loadVolfile(join(SEED, "client.vol"));
  assert.equal(client.top, "readahead");
  const ra = client.volumes.find((v) => v.name === "readahead")!;
  assert.equal(ra.options["page-size"], 65536);
  assert.equal(ra.options["page-count"], 16);
});

test("options are converted by kind and defaults applied", () => {
  const v = checkVolfile(parseVolfile(leafWith(
    "option size 64KB", "option page-count 8", "option flag Enable", "option timeout 0.5",
    "option mode AUTO", 'option label "a b"', "option hosts 10.0.0.*, 127.0.0.1 ::1 192.168.0.0/16",
  ), "t.vol"), CATALOG);
  assert.deepEqual(v.volumes[0]!.options, {
    dir: "/x", size: 65536, count: 8, flag: true, timeout: 0.5, mode: "auto", label: "a b",
    hosts: ["10.0.0.*", "127.0.0.1", "::1", "192.168.0.0/16"],
  });
  const d = checkVolfile(parseVolfile(leafWith(), "t.vol"), CATALOG);
  assert.deepEqual(d.volumes[0]!.options, { dir: "/x", size: 131072, count: 4, flag: false, timeout: 42, mode: "none" });
});

test("sizes take KB..PB in powers of 1024, any case, no space", () => {
  const sizes: [string, number][] = [["4096", 4096], ["128KB", 131072], ["4mb", 4194304], ["1Mb", 1048576]];
  for (const [text, bytes] of sizes) {
    const v = checkVolfile(parseVolfile(leafWith(`option size ${text}`), "t.vol"), CATALOG);
    assert.equal(v.volumes[0]!.options.size, bytes, text);
  }
  for (const bad of ["64K", "1.5MB", "-4096", "MB", "64MiB"]) {
    assert.match(onlyError(leafWith(`option size ${bad}`)).message, /bad value .*expected a size/, bad);
  }
  const spaced = onlyError(leafWith("option size 64 KB"));
  assert.match(spaced.message, /takes one value, got 2 words.*did you mean "64KB"/);
});

test("bad values name the option, the line and what was expected", () => {
  const cases: [string, RegExp][] = [
    ["option size 2KB", /option "size": 2048 \(2KB\) is below the minimum 4096 \(4KB\)/],
    ["option size 8MB", /above the maximum 4194304 \(4MB\)/],
    ["option count 0", /option "count": 0 is below the minimum 1/],
    ["option count many", /expected a whole number/],
    ["option flag maybe", /expected a boolean: on\/off/],
    ["option timeout 0.1", /0.1 seconds is below the minimum 0.5 seconds/],
    ["option timeout 5s", /expected a duration in seconds/],
    ["option mode fixed", /expected one of none, auto/],
    ["option hosts 10.0.0.1;rm", /"10.0.0.1;rm" is not one/],
    ["option label two words", /takes one value, got 2 words.*quote/],
  ];
  for (const [line, message] of cases) {
    const e = onlyError(leafWith(line));
    assert.equal(e.where?.line, 4, `${line}: ${e.message}`);
    assert.match(e.message, message);
    assert.ok(e.message.startsWith("t.vol:4: "), e.message);
  }
  const rel = onlyError(["volume a", "type test/leaf", "option dir relative", "end-volume"].join("\n"));
  assert.match(rel.message, /absolute path/);
});

test("a missing required option names the volume line and the option", () => {
  const e = onlyError("volume a\ntype test/leaf\nend-volume");
  assert.equal(e.where?.line, 1);
  assert.equal(e.where?.option, "dir");
  assert.match(e.message, /needs option "dir"/);
});

test("unknown options suggest the closest name, pattern names included", () => {
  const e = onlyError(leafWith("option sise 64KB"));
  assert.equal(e.where?.line, 4);
  assert.match(e.message, /unknown option "sise" for test\/leaf \(did you mean "size"\?\)/);
  assert.match(onlyError(leafWith("option page-cuont 3")).message, /did you mean "page-count"/);
  const far = onlyError(leafWith("option completely-different 1"));
  assert.doesNotMatch(far.message, /did you mean/);
  assert.match(far.message, /valid options: dir, size/);

  const withTop = (opt: string) => `${leafWith()}\nvolume storage-locks\ntype test/top\nsubvolumes a\n${opt}\nend-volume`;
  assert.match(onlyError(withTop("option auth.ip.storage-lock.allow *")).message,
    /names volume "storage-lock", which is not defined.*did you mean "auth\.ip\.storage-locks\.allow"/);
  assert.match(onlyError(withTop("option auth.ip.storage-locks.alow *")).message, /did you mean "auth\.ip\.storage-locks\.allow"/);
  assert.match(onlyError(withTop("option auth.ip.storage- locks.allow *")).message, /did you mean "auth\.ip\.storage-locks\.allow"\? an option name has no spaces/);
  assert.deepEqual(checkVolfile(parseVolfile(withTop("option auth.ip.a.reject 10.0.0.1 10.0.0.2"), "t.vol"), CATALOG).volumes[1]!.options,
    { "auth.ip.a.reject": ["10.0.0.1", "10.0.0.2"] });
});

test("an option given twice is an error naming both lines", () => {
  const e = onlyError(leafWith("option count 2", "option page-count 3"));
  assert.equal(e.where?.line, 5);
  assert.match(e.message, /given twice .*also on line 4/);
});

test("unknown types list the known ones and suggest the closest; aliases resolve", () => {
  const e = onlyError("volume a\ntype test/lef\noption dir /x\nend-volume");
  assert.equal(e.where?.line, 2);
  assert.match(e.message, /unknown type "test\/lef".*did you mean "test\/leaf".*known types: test\/alias, test\/leaf, test\/top/);
  const v = checkVolfile(parseVolfile("volume a\ntype test/alias\noption dir /x\nend-volume", "t.vol"), CATALOG);
  assert.equal(v.volumes[0]!.type, "test/leaf");
  assert.match(onlyError("volume a\noption dir /x\nend-volume").message, /has no type line/);
});

test("graph shape errors: unknown, later, self, cycles, duplicates, unused, child counts", () => {
  const vol = (name: string, type: string, subs = "") =>
    `volume ${name}\ntype ${type}\n${type === "test/leaf" ? "option dir /x\n" : ""}${subs ? `subvolumes ${subs}\n` : ""}end-volume\n`;
  const cases: [string, number, RegExp][] = [
    [vol("a", "test/leaf") + vol("b", "test/top", "aa"), 7, /unknown subvolume "aa" .*did you mean "a"/],
    [vol("b", "test/top", "a") + vol("a", "test/leaf") + vol("c", "test/top", "b"), 3, /subvolume "a" is defined later \(line 5\)/],
    [vol("a", "test/leaf") + vol("b", "test/top", "b a"), 7, /lists itself/],
    [vol("a", "test/leaf") + vol("b", "test/top", "a a"), 7, /listed twice/],
    [vol("a", "test/leaf") + vol("a", "test/leaf") + vol("b", "test/top", "a"), 5, /defined twice \(first on line 1\)/],
    [vol("a", "test/leaf") + vol("b", "test/leaf") + vol("c", "test/top", "b"), 1, /"a" is not used by any other volume.*"c"/],
    [vol("a", "test/leaf") + vol("b", "test/top"), 5, /takes 1 to 2 subvolumes; volume "b" has 0/],
    [vol("a", "test/leaf") + vol("x", "test/leaf", "a") + vol("b", "test/top", "x"), 8, /takes 0 subvolumes; volume "x" has 1/],
  ];
  for (const [text, line, message] of cases) {
    const errors = errorsOf(text);
    const hit = errors.find((e) => message.test(e.message));
    assert.ok(hit, `${message}: got ${errors.map((e) => e.message).join(" | ")}`);
    assert.equal(hit.where?.line, line, hit.message);
  }
  const cyc = errorsOf(vol("a", "test/top", "b") + vol("b", "test/top", "a"));
  assert.ok(cyc.some((e) => /cycle: "a" -> "b" -> "a"/.test(e.message)), cyc.map((e) => e.message).join(" | "));
  assert.match(errorsOf("# nothing\n")[0]!.message, /^t\.vol:1: no volumes defined/);
});

test("collectVolfileErrors reports every problem sorted by line; checkVolfile throws the first", () => {
  const text = leafWith("option sise 1", "option count 0") + "\nvolume b\ntype test/nope\nend-volume\nvolume c\ntype test/top\nsubvolumes a\nend-volume";
  const errors = errorsOf(text);
  assert.deepEqual(errors.map((e) => e.where?.line), [4, 5, 7, 8]);
  assert.throws(() => checkVolfile(parseVolfile(text, "t.vol"), CATALOG), (e: unknown) => e === errors[0] || (e instanceof ConfigError && e.where?.line === 4));
});

test("patternProperties regexes are spelled out as readable option names", () => {
  assert.deepEqual(templatesOf("^auth\\.ip\\.[^.\\s]+\\.(allow|reject)$"), ["auth.ip.<volume>.allow", "auth.ip.<volume>.reject"]);
  assert.deepEqual(templatesOf("^x-(?:a|b)?$"), ["x-", "x-a", "x-b"]);
  assert.deepEqual(templatesOf("^a(?=b)"), []);
  assert.deepEqual(templatesOf("^a{2}$"), []);
});

test("deep and reversed volfiles check without recursion limits or quadratic time", () => {
  const n = 20000;
  const parts: string[] = [];
  // v0 uses v1 uses v2 ... : every reference points forward.
  for (let i = 0; i < n; i++) parts.push(`volume v${i}\ntype test/top\nsubvolumes v${i + 1}\nend-volume`);
  parts.push(`volume v${n}\ntype test/top\nsubvolumes v0\nend-volume`);
  const started = performance.now();
  const errors = errorsOf(parts.join("\n"));
  assert.ok(performance.now() - started < 5000);
  assert.equal(errors.filter((e) => /defined later|cycle/.test(e.message)).length, n);
  assert.ok(errors.some((e) => e.message.includes("cycle:")));
});

test("thousands of typos check in bounded time, the first ones keep their suggestions", () => {
  const parts: string[] = [];
  for (let i = 0; i < 5000; i++) parts.push(`volume volume-number-${i}\ntype test/top\nsubvolumes volume-numbr-${i}\nend-volume`);
  parts.push(`volume t\ntype test/top\nsubvolumes ${Array.from({ length: 2 }, (_, i) => `volume-number-${i}`).join(" ")}\nend-volume`);
  const started = performance.now();
  const errors = errorsOf(parts.join("\n"));
  const ms = performance.now() - started;
  assert.ok(ms < 10000, `took ${ms.toFixed(0)} ms`);
  assert.ok(errors.length >= 5000);
});

test("schemas with their own x- annotations still compile in strict mode; real typos do not", () => {
  const annotated = defineXlator({
    type: "test/annotated",
    schema: { type: "object", additionalProperties: false, properties: { n: { type: "integer", "x-volfile": "int", "x-unit": "seconds", minimum: 1 } } },
    children: { min: 0, max: 0 },
    init: (init) => new Xlator(init),
  });
  const typo = defineXlator({ ...annotated, type: "test/typo", schema: { type: "object", properties: { n: { type: "integer", minimun: 1 } } } });
  const catalog: XlatorCatalog = { find: (t) => (t === "test/annotated" ? annotated : t === "test/typo" ? typo : undefined), types: [] };
  const v = checkVolfile(parseVolfile("volume a\ntype test/annotated\noption n 3\nend-volume", "t.vol"), catalog);
  assert.equal(v.volumes[0]!.options.n, 3);
  const errors = collectVolfileErrors(parseVolfile("volume a\ntype test/typo\noption n 3\nend-volume", "t.vol"), catalog);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.where?.line, 2);
  assert.match(errors[0]!.message, /schema of test\/typo is invalid: .*minimun/);
});
