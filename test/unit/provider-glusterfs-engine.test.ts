// The glusterfs engine's planner (replica layout, gluster CLI argv, option mapping, the mount) and
// the shape of its shell steps, table-tested. The real GlusterFS run is test/integration/glusterfs-engine.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterArgs } from "../../provider/args";
import { Cluster } from "../../provider/cluster";
import { engineGuard } from "../../provider/engines/guard";
import { resolveClusterConfig } from "../../provider/validate";
import { ConfigError } from "../../runtime/core/errors";
import {
  planGlusterfsVolume,
  planMount,
  replicaLayout,
  volumeOptions,
  type GlusterfsVolumeInput,
} from "../../provider/engines/glusterfs";
import * as gs from "../../provider/engines/glusterfs-scripts";
import { asBash, hostPaths } from "../../provider/scripts";

const seedOptions = { serverTransportTimeout: 5, ioThreadCount: 8, ioCacheSize: "64MB", writeBehindAggregateSize: 131072, readAheadPageCount: 16 };

function input(nodeCount: number, over: Partial<GlusterfsVolumeInput> = {}): GlusterfsVolumeInput {
  return {
    volumeName: "gfs",
    nodes: Array.from({ length: nodeCount }, (_, i) => ({ name: `node${i + 1}`, address: `10.0.0.${i + 1}`, brickDir: "/ha" })),
    arbiter: false,
    options: seedOptions,
    authAllow: ["10.0.0.*", "127.0.0.1"],
    remoteHost: "cluster.example.com",
    mountPoint: "/ha",
    ...over,
  };
}

test("replica layout by node count: 2 -> replica 2, multiples of 3 -> replica 3, other even counts -> replica 2 sets", () => {
  const cases: Array<[nodes: number, arbiter: boolean, want: ReturnType<typeof replicaLayout>]> = [
    [2, false, { replica: 2, arbiter: false, sets: 1 }],
    [3, false, { replica: 3, arbiter: false, sets: 1 }],
    [3, true, { replica: 3, arbiter: true, sets: 1 }],
    [4, false, { replica: 2, arbiter: false, sets: 2 }],
    [6, false, { replica: 3, arbiter: false, sets: 2 }],
    [6, true, { replica: 3, arbiter: true, sets: 2 }],
    [8, false, { replica: 2, arbiter: false, sets: 4 }],
  ];
  for (const [nodes, arbiter, want] of cases) assert.deepEqual(replicaLayout(nodes, arbiter), want, `${nodes} nodes, arbiter ${arbiter}`);
});

test("layouts that leave a brick over, or an arbiter without sets of three, are ConfigErrors naming the field", () => {
  const cases: Array<[nodes: number, arbiter: boolean, field: RegExp]> = [
    [1, false, /^nodes: .*at least 2/],
    [5, false, /^nodes: .*5 nodes leave one over/],
    [7, false, /^nodes: /],
    [2, true, /^arbiter: .*sets of three/],
    [4, true, /^arbiter: /],
  ];
  for (const [nodes, arbiter, field] of cases) {
    assert.throws(() => replicaLayout(nodes, arbiter), (e: unknown) => e instanceof ConfigError && e.code === "ECONFIG" && field.test(e.message), `${nodes}/${arbiter}`);
  }
});

test("volume create argv: replica count, arbiter, bricks in node order, force", () => {
  const cases: Array<[GlusterfsVolumeInput, string]> = [
    [input(2), "volume create gfs replica 2 transport tcp 10.0.0.1:/ha 10.0.0.2:/ha force"],
    [input(3), "volume create gfs replica 3 transport tcp 10.0.0.1:/ha 10.0.0.2:/ha 10.0.0.3:/ha force"],
    [input(3, { arbiter: true, volumeName: "web" }), "volume create web replica 3 arbiter 1 transport tcp 10.0.0.1:/ha 10.0.0.2:/ha 10.0.0.3:/ha force"],
    [input(4), "volume create gfs replica 2 transport tcp 10.0.0.1:/ha 10.0.0.2:/ha 10.0.0.3:/ha 10.0.0.4:/ha force"],
  ];
  for (const [inp, want] of cases) assert.equal(planGlusterfsVolume(inp).create.join(" "), want);
  const plan = planGlusterfsVolume(input(3));
  assert.deepEqual(plan.peers, ["10.0.0.2", "10.0.0.3"], "node 1 probes the others");
  assert.deepEqual([plan.start, plan.stop, plan.delete].map((a) => a.join(" ")), ["volume start gfs", "volume stop gfs force", "volume delete gfs"]);
});

test("seed options map to gluster volume set keys", () => {
  assert.deepEqual(volumeOptions(seedOptions, ["10.0.0.*", "127.0.0.1"]), [
    ["network.ping-timeout", "5"],
    ["performance.io-thread-count", "8"],
    ["performance.cache-size", "64MB"],
    ["performance.aggregate-size", "131072"],
    ["performance.read-ahead-page-count", "16"],
    ["auth.allow", "10.0.0.*,127.0.0.1"],
  ]);
  // ping-timeout is whole seconds: a fractional transport timeout rounds up, never to a shorter wait.
  assert.equal(volumeOptions({ ...seedOptions, serverTransportTimeout: 2.5 }, ["*"])[0]![1], "3");
});

test("options GlusterFS cannot hold are ConfigErrors naming the option", () => {
  const cases: Array<[Partial<typeof seedOptions>, RegExp]> = [
    [{ serverTransportTimeout: 1014 }, /^options\.serverTransportTimeout: .*1013/],
    [{ readAheadPageCount: 17 }, /^options\.readAheadPageCount: .*16/],
  ];
  for (const [over, msg] of cases) {
    assert.throws(() => volumeOptions({ ...seedOptions, ...over }, ["*"]), (e: unknown) => e instanceof ConfigError && msg.test(e.message));
  }
});

test("the mount uses the cluster name with the records' addresses as backup volfile servers", () => {
  const cases: Array<[remoteHost: string, argv: string]> = [
    ["cluster.example.com", "mount -t glusterfs -o backup-volfile-servers=10.0.0.1:10.0.0.2 cluster.example.com:/gfs /ha"],
    ["10.0.0.1,10.0.0.2", "mount -t glusterfs -o backup-volfile-servers=10.0.0.2 10.0.0.1:/gfs /ha"],
    ["10.0.0.2", "mount -t glusterfs -o backup-volfile-servers=10.0.0.1 10.0.0.2:/gfs /ha"],
  ];
  for (const [remoteHost, argv] of cases) assert.equal(planMount(remoteHost, "gfs", "/ha", ["10.0.0.1", "10.0.0.2"]).argv.join(" "), argv);
  assert.deepEqual(planMount("solo.example.com", "v", "/m", []).argv, ["mount", "-t", "glusterfs", "solo.example.com:/v", "/m"]);
});

test("every step script is valid bash", () => {
  const p = hostPaths("/opt/gluster-ha");
  const plan = planGlusterfsVolume(input(3, { arbiter: true }));
  const scripts = {
    nodeUpProcess: gs.nodeUpScript("process", p, "node1", "10.0.0.1", "/ha"),
    nodeUpSystemd: gs.nodeUpScript("systemd", p, "node1", "10.0.0.1", "/ha"),
    nodeDown: gs.nodeDownScript("process", p, "/ha", false),
    nodeDownSystemd: gs.nodeDownScript("systemd", p, "/ha", true),
    probe: gs.peerProbeScript(plan.peers),
    detach: gs.peerDetachScript(plan.peers),
    volumeUp: gs.volumeUpScript(plan),
    volumeDown: gs.volumeDownScript(plan),
    clientUp: gs.clientUpScript(plan.mount, p, "client"),
    unmount: gs.clientDownScript("/ha", p),
  };
  for (const [name, script] of Object.entries(scripts)) {
    const r = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    // asBash's heredoc would end early on its own marker.
    assert.doesNotMatch(asBash(script).split("\n").slice(1, -2).join("\n"), /^GLUSTER_HA_SCRIPT_EOF$/m, name);
  }
});

test("the node step installs the distribution's packages and starts glusterd per service manager", () => {
  const p = hostPaths("/opt/gluster-ha");
  const process = gs.nodeUpScript("process", p, "node1", "10.0.0.1", "/ha");
  assert.match(process, /apt-get install -y glusterfs-server glusterfs-client/);
  assert.match(process, /dnf install -y glusterfs-server glusterfs-fuse/);
  assert.match(process, /glusterd -p "\$pidfile" --log-file=\/opt\/gluster-ha\/log\/glusterd\.log/);
  assert.doesNotMatch(process, /systemctl/);
  const systemd = gs.nodeUpScript("systemd", p, "node1", "10.0.0.1", "/ha");
  assert.match(systemd, /systemctl enable --now glusterd/);
  assert.match(gs.clientUpScript(planMount("c.example.com", "gfs", "/ha", ["10.0.0.1"]), p, "client"), /apt-get install -y glusterfs-client\b[^-]/);
  assert.match(gs.clientUpScript(planMount("c.example.com", "gfs", "/ha", ["10.0.0.1"]), p, "client"), /dnf install -y glusterfs-fuse/);
});

test("destroy keeps the bricks unless retainData is false; the volume goes with --mode=script", () => {
  const p = hostPaths("/opt/gluster-ha");
  assert.doesNotMatch(gs.nodeDownScript("process", p, "/ha", true), /\/ha\b(?!\/)/);
  const wipe = gs.nodeDownScript("process", p, "/ha", false);
  assert.match(wipe, /find \/ha -mindepth 1 -maxdepth 1 -exec rm -rf \{\} \+/, ".glusterfs goes with the rest");
  assert.match(wipe, /setfattr -x "\$x" \/ha/, "trusted.* xattrs are removed from the brick root");
  const down = gs.volumeDownScript(planGlusterfsVolume(input(2)));
  assert.match(down, /out=\$\(gluster --mode=script "\$@" 2>&1\)/);
  assert.match(down, /gl volume stop gfs force/);
  assert.match(down, /gl volume delete gfs/);
});

test("the engine marker refuses a host the bundled engine set up", () => {
  const dir = spawnSync("mktemp", ["-d"], { encoding: "utf8" }).stdout.trim();
  try {
    const p = hostPaths(`${dir}/opt`);
    const run = () => spawnSync("sh", ["-c", asBash(gs.engineMarkerScript(p, "node1"))], { encoding: "utf8" });
    assert.equal(run().status, 0, "a fresh host is accepted");
    assert.equal(spawnSync("cat", [gs.engineMarkerPath(p)], { encoding: "utf8" }).stdout, "glusterfs\n");
    assert.equal(run().status, 0, "re-running on its own host is fine");
    spawnSync("ln", ["-s", "releases/abc", `${dir}/opt/current`]);
    const refused = run();
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /^engine: host node1 is set up by the bundled gluster-ha engine .*migrated/);
  } finally {
    spawnSync("rm", ["-rf", dir]);
  }
});

// ---- The component with engine glusterfs, under Pulumi's mocks --------------------------------------

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, any>;
}
const registered: Registered[] = [];
/** Stash name -> the engine "recorded in the state" by an earlier deployment. */
const recordedEngine = new Map<string, string>();

// A refused engine switch fails the Pulumi program through its rejected outputs; here the test asserts it.
const expectedRefusal = (e: unknown): void => {
  if (!(e instanceof pulumi.ResourceError && e.message.startsWith("engine: "))) throw e;
};
before(() => {
  process.on("unhandledRejection", expectedRefusal);
  pulumi.runtime.setMocks(
    {
      newResource(r) {
        registered.push({ type: r.type, name: r.name, inputs: r.inputs });
        if (r.type === "pulumi:index:Stash") return { id: r.name, state: { input: r.inputs.input, output: recordedEngine.get(r.name) ?? r.inputs.input } };
        const stdout = r.name.endsWith("-glusterd") ? `${r.name.split("-").slice(-2, -1)[0]} glusterd up 10.3 brick x:/ha\n` : "";
        return { id: `${r.name}-id`, state: { ...r.inputs, stdout, stderr: "" } };
      },
      call: (c) => c.inputs,
    },
    "gluster-ha-test",
    "unit",
    false,
  );
});

after(() => {
  process.off("unhandledRejection", expectedRefusal);
});

const value = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((resolve) => o.apply(resolve));
const bundle = { hash: "0123456789abcdef", archivePath: "/tmp/gluster-ha-runtime-test.tar.gz", version: "0.0.0" };

function clusterArgs(over: Partial<ClusterArgs> = {}, nodeCount = 2): ClusterArgs {
  return {
    engine: "glusterfs",
    nodes: Array.from({ length: nodeCount }, (_, i) => ({
      name: `node${i + 1}`, address: `127.0.0.${i + 2}`, connection: { local: true }, brickDir: `/s/node${i + 1}/brick`, installPrefix: `/s/node${i + 1}/opt`,
    })),
    client: { address: "127.0.0.1", connection: { local: true }, mountPoint: "/s/client/mnt", installPrefix: "/s/client/opt" },
    clusterName: "cluster.gha.test",
    serviceManager: "process",
    dns: { mode: "hosts", hostsFile: "/s/hosts" },
    apache: { serverName: "cluster.gha.test", port: 24480, configDir: "/s/apache", control: "env APACHE_CONFDIR=/s/apache apache2ctl" },
    ...over,
  };
}

async function build(name: string, args: ClusterArgs): Promise<{ cluster: Cluster; mine: Registered[] }> {
  const cluster = new Cluster(name, args, { runtimeBundle: bundle });
  await value(cluster.nodeStatus);
  await value(pulumi.all([cluster.volfiles, cluster.siteUrl]));
  await new Promise((r) => setTimeout(r, 50));
  return { cluster, mine: registered.filter((r) => r.name.startsWith(`${name}-`)) };
}

test("engine glusterfs: glusterd per node in turn, pool and volume on node 1, then the same DNS, mount, Apache steps", async () => {
  const { mine, cluster } = await build("g3", clusterArgs({ arbiter: true }, 3));
  const names = mine.map((r) => r.name);
  assert.deepEqual(new Set(names), new Set([
    "g3-engine", "g3-node1-glusterd", "g3-node2-glusterd", "g3-node3-glusterd", "g3-node1-pool", "g3-node1-volume",
    "g3-client-dns-hosts", "g3-client-mount", "g3-client-apache",
  ]));
  const at = (n: string): number => names.indexOf(`g3-${n}`);
  assert.ok(at("engine") < at("node1-glusterd") && at("node1-glusterd") < at("node2-glusterd") && at("node2-glusterd") < at("node3-glusterd"));
  assert.ok(at("node3-glusterd") < at("node1-pool") && at("node1-pool") < at("node1-volume"));
  assert.ok(at("node1-volume") < at("client-mount") && at("client-dns-hosts") < at("client-mount") && at("client-mount") < at("client-apache"));
  const byName = (n: string) => mine.find((r) => r.name === `g3-${n}`)!.inputs;
  assert.match(byName("node1-volume").create, /gl volume create gfs replica 3 arbiter 1 transport tcp 127\.0\.0\.2:\/s\/node1\/brick 127\.0\.0\.3:\/s\/node2\/brick 127\.0\.0\.4:\/s\/node3\/brick force/);
  assert.match(byName("node1-volume").delete, /gl volume delete gfs/);
  assert.match(byName("node1-pool").create, /for peer in 127\.0\.0\.3 127\.0\.0\.4; do/);
  assert.match(byName("client-mount").create, /mount -t glusterfs -o backup-volfile-servers=127\.0\.0\.2:127\.0\.0\.3:127\.0\.0\.4 cluster\.gha\.test:\/gfs \/s\/client\/mnt/);
  assert.doesNotMatch(byName("node2-glusterd").delete, /find \/s\/node2\/brick/, "bricks retained by default");
  assert.deepEqual(await value(cluster.volfiles), {}, "GlusterFS renders its own volfiles");
  assert.deepEqual(await value(cluster.nodeStatus), {
    node1: "node1 glusterd up 10.3 brick x:/ha", node2: "node2 glusterd up 10.3 brick x:/ha", node3: "node3 glusterd up 10.3 brick x:/ha",
  });
});

test("the DNS and Apache steps are the bundled engine's, byte for byte", async () => {
  const [{ mine: g }, { mine: b }] = [await build("same-g", clusterArgs()), await build("same-b", clusterArgs({ engine: "bundled" }))];
  for (const step of ["client-dns-hosts", "client-apache"]) {
    const [gi, bi] = [g, b].map((m) => m.find((r) => r.name.endsWith(`-${step}`))!.inputs);
    assert.deepEqual([gi!.create, gi!.update, gi!.delete], [bi!.create, bi!.update, bi!.delete], step);
  }
});

test("retainData: false wipes each node's brick after the volume is gone", async () => {
  const { mine } = await build("gw", clusterArgs({ retainData: false, volumeName: "web" }));
  assert.match(mine.find((r) => r.name === "gw-node2-glusterd")!.inputs.delete, /find \/s\/node2\/brick -mindepth 1/);
  assert.match(mine.find((r) => r.name === "gw-node1-volume")!.inputs.create, /gl volume start web/);
});

test("a cluster recorded with another engine is refused before any step runs", async () => {
  recordedEngine.set("sw-engine", "bundled");
  const guard = engineGuard("sw", "glusterfs", new pulumi.ComponentResource("test:index:Parent", "sw-parent"));
  // Every promise inside the rejected Output, so none is left unhandled.
  const inner = guard.checked as any;
  for (const p of [inner.isKnown, inner.isSecret, inner.allResources?.()]) (p as Promise<unknown> | undefined)?.catch(() => {});
  await assert.rejects(
    inner.promise() as Promise<unknown>,
    (e: unknown) => e instanceof pulumi.ResourceError && /^engine: switching this cluster from engine "bundled" \(as deployed\) to "glusterfs" is refused: the data on the bricks would have to be migrated/.test(e.message),
  );
  recordedEngine.set("same-engine", "glusterfs");
  const unchanged = engineGuard("same", "glusterfs", new pulumi.ComponentResource("test:index:Parent", "same-parent"));
  assert.equal(((await (unchanged.checked as any).promise()) as unknown[]).length, 1, "the same engine passes");
});

test("inputs: engine glusterfs takes 2..N nodes in replica sets; bundled-only and glusterfs-only fields are refused by name", () => {
  assert.equal(resolveClusterConfig(clusterArgs({}, 4)).nodes.length, 4);
  assert.equal(resolveClusterConfig(clusterArgs()).volumeName, "gfs");
  assert.equal(resolveClusterConfig({ ...clusterArgs(), engine: undefined }).engine, "bundled");
  const bad: Array<[string, ClusterArgs, string]> = [
    ["five nodes", clusterArgs({}, 5), "nodes: engine glusterfs lays nodes out in replica sets of 2 or 3 bricks, and 5 nodes leave one over (use 2, 3, 4, 6 ...)"],
    ["one node", clusterArgs({}, 1), "nodes: must list at least two storage nodes"],
    ["bundled with three nodes", clusterArgs({ engine: "bundled" }, 3), "nodes: must list exactly two storage nodes"],
    ["bundled with a volume name", clusterArgs({ engine: "bundled", volumeName: "web" }), `volumeName: only engine glusterfs names its volume (the bundled engine's is "gfs")`],
    ["arbiter with two nodes", clusterArgs({ arbiter: true }), "arbiter: needs the nodes in sets of three (3, 6, 9 ...), got 2 nodes"],
    ["a listen port", clusterArgs({ listenPort: 24400 }), "listenPort: engine glusterfs uses glusterd's ports (24007, bricks from 49152), remove listenPort"],
    ["too many read-ahead pages", clusterArgs({ options: { readAheadPageCount: 32 } }), "options.readAheadPageCount: engine glusterfs allows at most 16 (performance.read-ahead-page-count), got 32"],
    ["a bad volume name", clusterArgs({ volumeName: "-x" }), 'volumeName: must match pattern "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"'],
    ["an unknown engine", clusterArgs({ engine: "ceph" as never }), 'engine: must be one of "bundled", "glusterfs"'],
  ];
  for (const [what, args, message] of bad) {
    assert.throws(() => resolveClusterConfig(args), (e: unknown) => e instanceof ConfigError && e.message.split("; ").includes(message), `${what}: want ${message}`);
  }
});

test("with systemd the mount goes into fstab (blanks escaped, _netdev, backups); destroy takes only that line out", () => {
  const m = planMount("cluster.example.com", "gfs", "/srv/web data", ["10.0.0.1", "10.0.0.2"]);
  assert.equal(gs.fstabLine(m), "cluster.example.com:/gfs /srv/web\\040data glusterfs defaults,_netdev,backup-volfile-servers=10.0.0.1:10.0.0.2 0 0");
  const p = hostPaths("/opt/gluster-ha");
  assert.doesNotMatch(gs.clientUpScript(m, p, "client", "process"), /fstab/);
  assert.ok(gs.clientUpScript(m, p, "client", "systemd").endsWith(`printf '%s\\n' '${gs.fstabLine(m)}' >> /etc/fstab`));
  const dir = spawnSync("mktemp", ["-d"], { encoding: "utf8" }).stdout.trim();
  try {
    const fstab = `${dir}/fstab`;
    const other = "UUID=abc / ext4 defaults 0 1\nserver:/other /srv/web\\040data2 glusterfs defaults 0 0\n";
    writeFileSync(fstab, `${other}${gs.fstabLine(m)}\n`);
    const r = spawnSync("sh", ["-c", asBash(gs.clientDownScript(m.mountPoint, hostPaths(`${dir}/opt`), fstab))], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(fstab, "utf8"), other);
  } finally {
    spawnSync("rm", ["-rf", dir]);
  }
});
