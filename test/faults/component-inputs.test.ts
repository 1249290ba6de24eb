// The Pulumi component's input validation (provider/validate.ts) under bad input: every field of a full,
// valid configuration is replaced by wrong values (wrong type, empty, negative, huge, unknown keys) and
// the result must be either accepted or a ConfigError naming that exact field — never another
// exception, never a message that does not say which field.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../../runtime/core/errors";
import type { ClusterArgs } from "../../provider/args";
import { resolveClusterConfig } from "../../provider/validate";
import { record } from "./report";

const FILE = "component-inputs.test.ts";

const fullArgs = (): ClusterArgs => ({
  nodes: [
    { name: "node1", address: "10.0.0.2", bindAddress: "10.0.0.2", brickDir: "/ha", installPrefix: "/opt/gluster-ha", connection: { host: "10.0.0.2", port: 22, user: "root" } },
    { name: "node2", address: "10.0.0.3", brickDir: "/ha", connection: { host: "10.0.0.3", privateKey: "KEY" } },
  ],
  client: { name: "client", address: "10.0.0.1", mountPoint: "/ha", connection: { local: true } },
  clusterName: "cluster.yourdomain.com",
  dns: { mode: "hosts" },
  apache: { serverName: "www.example.com", documentRoot: "www" } as never,
  replication: "server",
  options: { ioThreadCount: 8 } as never,
  authAllow: ["10.0.0.*"],
  listenPort: 6996,
  serviceManager: "process",
  retainData: true,
});

/** Every leaf (and object) of a value, as [path segments, value]. */
function leaves(v: unknown, path: (string | number)[] = []): [(string | number)[], unknown][] {
  const out: [(string | number)[], unknown][] = path.length ? [[path, v]] : [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...leaves(x, [...path, i])));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) out.push(...leaves(x, [...path, k]));
  return out;
}

const display = (path: (string | number)[]) => path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");

function setAt(root: unknown, path: (string | number)[], value: unknown): void {
  let cur = root as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, unknown>;
  if (value === undefined) delete cur[path[path.length - 1]!];
  else cur[path[path.length - 1]!] = value;
}

const WRONG: unknown[] = ["", "x", "../..", "10.0.0.300", -1, 0, 1e12, 3.5, true, null, [], {}, { bogus: 1 }, ["a", 1], "a".repeat(5000)];

let tried = 0;

test("the full configuration the table starts from is valid", () => {
  assert.doesNotThrow(() => resolveClusterConfig(fullArgs()));
});

test("every field given every wrong value: accepted, or a ConfigError naming that field", () => {
  const bad: string[] = [];
  for (const [path] of leaves(fullArgs())) {
    for (const w of WRONG) {
      const args = fullArgs();
      setAt(args, path, w);
      tried++;
      try {
        resolveClusterConfig(args);
      } catch (err) {
        const field = display(path);
        if (!(err instanceof ConfigError)) bad.push(`${field}=${JSON.stringify(w)}: ${(err as Error).name}: ${(err as Error).message}`);
        // The message names the field itself or something inside it (a wrong object reports its inner fields).
        else if (!err.message.includes(field)) bad.push(`${field}=${JSON.stringify(w)}: message does not name the field: ${err.message}`);
      }
    }
  }
  assert.deepEqual(bad.slice(0, 15), [], `${bad.length} of ${tried} bad inputs were not reported properly`);
});

test("removing any required field or adding an unknown one names it", () => {
  const bad: string[] = [];
  for (const [path, v] of leaves(fullArgs())) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const args = fullArgs();
      setAt(args, [...path, "typoField"], 1);
      tried++;
      try {
        resolveClusterConfig(args);
        bad.push(`${display(path)}.typoField accepted`);
      } catch (err) {
        if (!(err instanceof ConfigError && err.message.includes(`${display(path)}.typoField`))) bad.push(`${display(path)}.typoField: ${(err as Error).message}`);
      }
    }
    const args = fullArgs();
    setAt(args, path, undefined);
    tried++;
    try {
      resolveClusterConfig(args);
    } catch (err) {
      if (!(err instanceof ConfigError)) bad.push(`without ${display(path)}: ${(err as Error).message}`);
      else if (!/\S+: /.test(err.message)) bad.push(`without ${display(path)}: no field named: ${err.message}`);
    }
  }
  assert.deepEqual(bad, []);
});

test("random JSON in place of the whole configuration never escapes as anything but a ConfigError", () => {
  fc.assert(fc.property(fc.anything(), (junk) => {
    tried++;
    try {
      resolveClusterConfig(junk as ClusterArgs);
    } catch (err) {
      return err instanceof ConfigError;
    }
    return false; // junk is never a valid cluster
  }), { numRuns: 300, seed: 11 });
  fc.assert(fc.property(fc.dictionary(fc.constantFrom("nodes", "client", "clusterName", "dns", "options", "listenPort"), fc.anything()), (part) => {
    tried++;
    try {
      resolveClusterConfig({ ...fullArgs(), ...part } as ClusterArgs);
      return true;
    } catch (err) {
      return err instanceof ConfigError;
    }
  }), { numRuns: 300, seed: 12 });
  record({ file: FILE, scenarios: 1, badInputs: tried });
});
