// Replacing a storage node (new address, host or brick directory): the identity planner (tables), the
// resource graph and its order (Pulumi mocks, dependsOn read through a transformation), and the guard
// that keeps an old incarnation's delete from stopping the new node (run for real in bash).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterArgs, ConnectionConfig } from "../../provider/args";
import { Cluster } from "../../provider/cluster";
import { hostIdentity, nodeIdentity, type NodeIdentityInput } from "../../provider/planners/replace";
import * as scripts from "../../provider/scripts";

const inputs = new Map<string, Record<string, any>>();

before(() => {
  pulumi.runtime.setMocks(
    {
      newResource(r) {
        inputs.set(r.name, r.inputs);
        return { id: `${r.name}-id`, state: { ...r.inputs, stdout: "", stderr: "" } };
      },
      call: (c) => c.inputs,
    },
    "gluster-ha-test",
    "unit",
    false,
  );
});

const value = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((resolve) => o.apply(resolve));
const bundle = { hash: "0123456789abcdef", archivePath: "/tmp/gluster-ha-runtime-test.tar.gz", version: "0.0.0" };
const local: ConnectionConfig = { local: true, port: 22, user: "root" };

function args(node2Address = "127.0.0.3", node2Brick = "/s/node2/brick"): ClusterArgs {
  return {
    nodes: [
      { name: "node1", address: "127.0.0.2", connection: { local: true }, brickDir: "/s/node1/brick", installPrefix: "/s/node1/opt" },
      { name: "node2", address: node2Address, connection: { local: true }, brickDir: node2Brick, installPrefix: "/s/node2/opt" },
    ],
    client: { address: "127.0.0.1", connection: { local: true }, mountPoint: "/s/client/mnt", installPrefix: "/s/client/opt", remoteHost: `127.0.0.2,${node2Address}` },
    clusterName: "cluster.gha.test",
    listenPort: 24400,
    serviceManager: "process",
    dns: { mode: "none" },
    apache: false,
  };
}

/** Builds a cluster; returns each step's inputs and its direct dependencies, by resource name. */
/** A step's short name: node2-1a2b3c4d5e6f-bringup -> node2-bringup (the identity is in the name). */
const short = (name: string): string => name.replace(/-[0-9a-f]{12}-/, "-");

async function build(name: string, a: ClusterArgs): Promise<{ step: (n: string) => Record<string, any>; dependsOn: (n: string) => Set<string>; fullName: (n: string) => string }> {
  const byResource = new Map<pulumi.Resource, string>();
  const fullNames = new Map<string, string>();
  const deps = new Map<string, pulumi.Input<pulumi.Input<pulumi.Resource>[]> | pulumi.Input<pulumi.Resource> | undefined>();
  const cluster = new Cluster(name, a, {
    runtimeBundle: bundle,
    // Children inherit the component's transformations: a way to read each step's dependsOn.
    transformations: [(t) => {
      const n = short(t.name.replace(`${name}-`, ""));
      byResource.set(t.resource, n);
      deps.set(n, t.opts.dependsOn);
      fullNames.set(n, t.name);
      return undefined;
    }],
  });
  await value(pulumi.all([cluster.nodeStatus, cluster.volfiles]));
  await new Promise((r) => setTimeout(r, 50));
  const resolved = new Map<string, Set<string>>();
  for (const [n, d] of deps) {
    const list = d === undefined ? [] : await value(pulumi.output(d as pulumi.Input<pulumi.Resource[]>));
    resolved.set(n, new Set((Array.isArray(list) ? list : [list]).map((r) => byResource.get(r as pulumi.Resource) ?? "?")));
  }
  return {
    step: (n) => inputs.get(fullNames.get(n)!)!,
    dependsOn: (n) => resolved.get(n) ?? new Set(),
    fullName: (n) => fullNames.get(n)!.replace(`${name}-`, ""),
  };
}

/** Everything `n` waits for, directly or through other steps. */
function closure(dependsOn: (n: string) => Set<string>, n: string, seen = new Set<string>()): Set<string> {
  for (const d of dependsOn(n)) if (!seen.has(d)) { seen.add(d); closure(dependsOn, d, seen); }
  return seen;
}

const base: NodeIdentityInput = { name: "node2", address: "10.0.0.3", brickDir: "/ha", installPrefix: "/opt/gluster-ha", connection: { ...local, local: false, host: "n2.example" } };

test("a node's identity changes with its address, host, SSH port and user, install prefix and brick directory, not its peer's", () => {
  const rows: Array<[string, Partial<NodeIdentityInput>, boolean]> = [
    ["same inputs", {}, false],
    ["address", { address: "10.0.0.4" }, true],
    ["brick directory", { brickDir: "/ha2" }, true],
    ["connection host", { connection: { ...base.connection, host: "n3.example" } }, true],
    ["SSH port", { connection: { ...base.connection, port: 2222 } }, true],
    ["install prefix", { installPrefix: "/opt/other" }, true],
    // Another user may be another machine (an SSH gateway routing by user name).
    ["SSH user", { connection: { ...base.connection, user: "admin" } }, true],
    ["the default SSH user spelled out", { connection: { ...base.connection, user: "root" } }, false],
    ["local instead of SSH", { connection: local }, true],
  ];
  for (const [what, change, changes] of rows) {
    assert.equal(nodeIdentity({ ...base, ...change }) !== nodeIdentity(base), changes, what);
  }
  assert.match(nodeIdentity(base), /^node2-[0-9a-f]{12}$/);
});

test("a node's host identity is where its files live: the connection host and the install prefix", () => {
  const rows: Array<[Partial<NodeIdentityInput>, string]> = [
    [{}, "n2.example:22:/opt/gluster-ha"],
    [{ address: "10.0.0.4", brickDir: "/ha2" }, "n2.example:22:/opt/gluster-ha"],
    [{ connection: { ...base.connection, port: 2222 } }, "n2.example:2222:/opt/gluster-ha"],
    // root (the default) is left out: identities of nodes deployed before the user counted stay the same.
    [{ connection: { ...base.connection, user: "admin" } }, "admin@n2.example:22:/opt/gluster-ha"],
    [{ connection: local, installPrefix: "/s/opt" }, "local:/s/opt"],
  ];
  for (const [change, want] of rows) assert.equal(hostIdentity({ ...base, ...change }), want);
});

test("a new node is brought up, healed fully from the survivor, then the survivor, the other server and the client switch", async () => {
  const { step, dependsOn } = await build("ord", args());
  const after = (n: string) => closure(dependsOn, n);
  // The new node's bring-up needs only its own host: never the survivor's switch.
  assert.ok(after("node2-bringup").has("node2-runtime") && after("node2-bringup").has("node2-prepare"));
  for (const s of ["node1-server", "node2-server", "node1-join", "node2-join", "node1-bringup"]) assert.ok(!after("node2-bringup").has(s), s);
  // The join (full heal) waits for both servers to be up.
  assert.deepEqual(dependsOn("node2-join"), new Set(["node1-bringup", "node2-bringup"]));
  // The survivor's volfile switch waits for the full heal; the servers stay rolling; the client comes last.
  assert.ok(after("node1-server").has("node2-join") && after("node1-server").has("node1-join"));
  assert.ok(after("node2-server").has("node1-server"), "rolling: node2 after node1");
  assert.ok(after("client-mount").has("node2-server") && after("client-mount").has("node2-join"));
  // The join runs on the survivor: heal full with its volfile naming the new peer, then wait until empty.
  const join2 = step("node2-join").create as string;
  const staged = "/s/node1/opt/etc/server.vol.join-node2";
  const full = join2.indexOf(`gluster-ha.js heal full -f ${staged} --host 127.0.0.2 --checkpoint /s/node1/opt/run/heal-join-node2-`);
  const wait = join2.indexOf(`gluster-ha.js heal info -f ${staged} --host 127.0.0.2 --wait-empty`);
  assert.ok(join2.indexOf(`glusterfsd.js --volfile-check -f ${staged}.next`) < full && full >= 0 && full < wait, join2);
  // Bring-up starts the node under the supervisor and stamps its identity; its delete is guarded by it.
  const up2 = step("node2-bringup");
  assert.match(up2.create, /node2\.identity/);
  assert.match(up2.create, /service restart gluster-ha-node2 .*\n[\s\S]*probe 127\.0\.0\.3:24400 gfs/);
  assert.match(up2.delete, /if \[ "\$\(cat \/s\/node2\/opt\/run\/gluster-ha-node2\.identity/);
  assert.doesNotMatch(up2.update, /restart|heal/, "an option change is the rolling server steps' job");
});

test("changing node2's address and brick gives node2 new bring-up and join steps, nothing else; the survivor's volfile names the new peer", async () => {
  const before = await build("old", args());
  const after = await build("new", args("127.0.0.4", "/s/node2/brick-new"));
  // The identity is in the bring-up and join steps' names: node2's are new resources (the old ones, no
  // longer in the program, are deleted after everything else); node1's stay the same resources.
  assert.match(after.fullName("node2-bringup"), /^node2-[0-9a-f]{12}-bringup$/);
  assert.notEqual(after.fullName("node2-bringup"), before.fullName("node2-bringup"));
  assert.notEqual(after.fullName("node2-join"), before.fullName("node2-join"));
  assert.equal(after.fullName("node1-bringup"), before.fullName("node1-bringup"));
  assert.equal(after.fullName("node1-join"), before.fullName("node1-join"));
  // Every other step keeps its name: updated in place (its script is idempotent).
  for (const s of ["node1-server", "node2-server", "node2-prepare", "node2-runtime", "client-mount"]) assert.equal(after.fullName(s), before.fullName(s), s);
  assert.match(after.step("node2-join").create, /option remote-host 127\.0\.0\.4/);
  assert.match(after.step("node1-server").create, /option remote-host 127\.0\.0\.4/);
  assert.match(after.step("node2-bringup").create, /option directory \/s\/node2\/brick-new/);
  assert.match(after.step("node2-bringup").create, /probe 127\.0\.0\.4:24400/);
  assert.match(after.step("client-mount").create, /127\.0\.0\.2,127\.0\.0\.4/);
});

test("node2 moved to another SSH host (same address and paths): a new node, and the runtime is copied to that host", async () => {
  const onHost = (host: string, port = 22, user?: string): ClusterArgs => {
    const a = args();
    a.nodes[1]!.connection = { host, port, ...(user ? { user } : {}), privateKey: "PEM" };
    return a;
  };
  const before = await build("mv0", onHost("10.0.0.3"));
  for (const [what, moved] of [["host", onHost("10.0.0.9")], ["SSH port", onHost("10.0.0.3", 2222)], ["SSH user", onHost("10.0.0.3", 22, "admin")]] as const) {
    const after = await build(`mv-${what.replace(/\W/g, "")}`, moved);
    assert.notEqual(after.fullName("node2-bringup"), before.fullName("node2-bringup"), `${what}: node2 is brought up anew`);
    assert.notEqual(after.fullName("node2-join"), before.fullName("node2-join"), `${what}: and healed in fully`);
    assert.equal(after.fullName("node1-bringup"), before.fullName("node1-bringup"), `${what}: node1 stays`);
    // Same remote path, another host: the copy is triggered by the host, not only the content hash.
    const copy = (b: typeof before) => b.step("node2-runtime-copy");
    assert.equal(copy(after).remotePath, copy(before).remotePath);
    assert.notDeepEqual(copy(after).triggers, copy(before).triggers, `${what}: the runtime is copied again`);
    assert.notEqual(after.step("node2-runtime").create, before.step("node2-runtime").create, `${what}: and installed there`);
    // The bring-up on the new host starts the server there (the stamp is per host: none yet).
    assert.match(after.step("node2-bringup").create, /service restart gluster-ha-node2 /);
  }
});

test("an old incarnation's delete stops the service only while the host's stamp still names it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gha-replace-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const paths = scripts.hostPaths(dir);
  mkdirSync(paths.run, { recursive: true });
  const svc: scripts.ServiceDef = { name: "gluster-ha-node2", manager: "process", paths, args: [], logFile: "/dev/null", description: "" };
  const bash = (s: string) => spawnSync("bash", ["-c", s], { encoding: "utf8" });
  const stopped = join(dir, "stopped");
  const oldDelete = scripts.ifIdentityScript(svc, "node2-old", `touch ${stopped}`);
  // The new node (same host and prefix) took the service over: the old delete leaves it running.
  assert.equal(bash(scripts.writeIdentityScript(svc, "node2-new")).status, 0);
  const r = bash(oldDelete);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(stopped), false);
  assert.match(r.stdout, /now run by node2-new, not node2-old; left running/);
  // Its own incarnation (or no stamp, as deployed before stamps): stopped, stamp removed.
  assert.equal(bash(scripts.writeIdentityScript(svc, "node2-old")).status, 0);
  assert.equal(bash(oldDelete).status, 0);
  assert.equal(existsSync(stopped), true);
  assert.equal(existsSync(scripts.identityStampPath(svc)), false);
  rmSync(stopped);
  assert.equal(bash(oldDelete).status, 0);
  assert.equal(existsSync(stopped), true, "no stamp: behaves as before stamps existed");
});
