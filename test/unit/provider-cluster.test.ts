// The Cluster component's resource graph, with Pulumi's mocks: which steps exist, on which hosts, in
// which order, with which scripts; validation failing at preview as a ResourceError naming the field.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterArgs } from "../../provider/args";
import { Cluster } from "../../provider/cluster";
import * as scripts from "../../provider/scripts";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, any>;
}
const registered: Registered[] = [];

before(() => {
  pulumi.runtime.setMocks(
    {
      newResource(r) {
        registered.push({ type: r.type, name: r.name, inputs: r.inputs });
        const stdout = r.name.endsWith("-server") ? `prepared\n${r.name.split("-").slice(-2, -1)[0]} up 127.0.0.x:6996 release=abc\n` : "";
        return { id: `${r.name}-id`, state: { ...r.inputs, stdout, stderr: "" } };
      },
      call: (c) => c.inputs,
    },
    "gluster-ha-test",
    "unit",
    false,
  );
});

/** Secret inputs arrive wrapped ({ <sig>: ..., value }) in mocks. */
const unsecret = (v: any): any => (v && typeof v === "object" && "4dabf18193072939515e22adb298388d" in v ? v.value : v);
const value = <T>(o: pulumi.Output<T>): Promise<T> => new Promise((resolve) => o.apply(resolve));
const bundle = { hash: "0123456789abcdef", archivePath: "/tmp/gluster-ha-runtime-test.tar.gz", version: "0.0.0" };

function localArgs(over: Partial<ClusterArgs> = {}): ClusterArgs {
  return {
    nodes: [
      { name: "node1", address: "127.0.0.2", connection: { local: true }, brickDir: "/s/node1/brick", installPrefix: "/s/node1/opt" },
      { name: "node2", address: "127.0.0.3", connection: { local: true }, brickDir: "/s/node2/brick", installPrefix: "/s/node2/opt" },
    ],
    client: { address: "127.0.0.1", connection: { local: true }, mountPoint: "/s/client/mnt", installPrefix: "/s/client/opt", remoteHost: "127.0.0.2,127.0.0.3" },
    clusterName: "cluster.gha.test",
    listenPort: 24400,
    serviceManager: "process",
    dns: { mode: "rfc2136", rfc2136: { server: "127.0.0.1", port: 24453, zone: "gha.test", keyName: "gha-key", keySecret: "c2VjcmV0" } },
    apache: { serverName: "cluster.gha.test", port: 24480, configDir: "/s/apache", control: "env APACHE_CONFDIR=/s/apache apache2ctl" },
    ...over,
  };
}

/** Builds a cluster and waits until all its children registered. */
async function build(name: string, args: ClusterArgs): Promise<{ cluster: Cluster; mine: Registered[] }> {
  const cluster = new Cluster(name, args, { runtimeBundle: bundle });
  await value(cluster.nodeStatus);
  await value(pulumi.all([cluster.volfiles, cluster.siteUrl]));
  await new Promise((r) => setTimeout(r, 50));
  return { cluster, mine: registered.filter((r) => r.name.startsWith(`${name}-`)) };
}

test("a local cluster is the seed's steps in order: prepare, runtime, node1, node2, dns, mount, apache", async () => {
  const { mine: all } = await build("loc", localArgs());
  // loc-engine: the Stash recording the engine (provider/engines/guard.ts).
  assert.deepEqual(all.filter((r) => r.type === "pulumi:index:Stash").map((r) => [r.name, r.inputs.input]), [["loc-engine", "bundled"]]);
  const mine = all.filter((r) => r.type !== "pulumi:index:Stash");
  // The bring-up and join steps carry the node's identity (provider/planners/replace.ts) in their names.
  const names = mine.map((r) => r.name.replace(/-node(\d)-[0-9a-f]{12}-(bringup|join)$/, "-node$1-$2"));
  assert.ok(mine.every((r) => r.type === "command:local:Command"), names.join(" "));
  assert.deepEqual(new Set(names), new Set([
    "loc-node1-prepare", "loc-node2-prepare", "loc-client-prepare",
    "loc-node1-runtime", "loc-node2-runtime", "loc-client-runtime",
    "loc-node1-bringup", "loc-node2-bringup", "loc-node1-join", "loc-node2-join",
    "loc-node1-server", "loc-node2-server", "loc-dns", "loc-client-mount", "loc-client-apache",
  ]));
  const at = (n: string): number => names.indexOf(`loc-${n}`);
  assert.ok(at("node1-prepare") < at("node1-runtime") && at("node1-runtime") < at("node1-server"));
  assert.ok(at("node1-server") < at("node2-server"), "node2 waits for node1 (rolling restarts)");
  assert.ok(at("node2-server") < at("dns") && at("dns") < at("client-mount") && at("client-mount") < at("client-apache"));
});

test("each server step installs its volfile, starts under the supervisor, waits for the port; updates wait for heal", async () => {
  const { mine, cluster } = await build("srv", localArgs());
  const node1 = mine.find((r) => r.name === "srv-node1-server")!.inputs;
  assert.match(node1.create, /cat > \/s\/node1\/opt\/etc\/server\.vol\.next\.tmp <<'GLUSTER_HA_FILE_EOF'\n# Dataspace on Node1\n/);
  // The runtime checks the new volfile before it replaces the running one.
  assert.match(node1.create, /glusterfsd\.js --volfile-check -f \/s\/node1\/opt\/etc\/server\.vol\.next\nmv -f \/s\/node1\/opt\/etc\/server\.vol\.next \/s\/node1\/opt\/etc\/server\.vol\n/);
  assert.match(node1.create, /option bind-address 127\.0\.0\.2\noption listen-port 24400\n/);
  assert.match(node1.create, /gluster-ha\.js service restart gluster-ha-node1 --run-dir \/s\/node1\/opt\/run .* -- env MALLOC_ARENA_MAX=2 (\S+=\S+ )*node (--\S+ )+\/s\/node1\/opt\/current\/bin\/glusterfsd\.js -f \/s\/node1\/opt\/etc\/server\.vol/);
  assert.match(node1.create, /gluster-ha\.js probe 127\.0\.0\.2:24400 gfs --timeout 30 \|\| \{ .*tail -n 6 \/s\/node1\/opt\/log\/glusterfsd\.log/);
  // ... unless the bring-up already started it with this release and volfile (the stamp): once per change.
  assert.match(node1.create, /^if \[ "\$\(cat \/s\/node1\/opt\/run\/gluster-ha-node1\.serving 2>\/dev\/null \|\| true\)" = 'release=0123456789abcdef volfile=[0-9a-f]{16}' \] && node /m);
  assert.doesNotMatch(node1.create, /heal info/);
  assert.match(node1.update, /gluster-ha\.js heal info -f \/s\/node1\/opt\/etc\/server\.vol --host 127\.0\.0\.2 --wait-empty --timeout 300\n/);
  assert.match(node1.delete, /service stop gluster-ha-node1/);
  assert.doesNotMatch(node1.delete, /rm -rf \/s\/node1\/brick/, "brick data is retained by default");
  const volfiles = await value(cluster.volfiles);
  assert.deepEqual(Object.keys(volfiles).sort(), ["client", "node1", "node2"]);
  assert.match(volfiles.client!, /option remote-host 127\.0\.0\.2,127\.0\.0\.3 # FQDN of server\noption remote-port 24400\n/);
  assert.deepEqual(await value(cluster.nodeStatus), { node1: "node1 up 127.0.0.x:6996 release=abc", node2: "node2 up 127.0.0.x:6996 release=abc" });
});

test("a server starts once per release and volfile: a later step finds it serving by its stamp (run in bash)", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gha-serving-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const paths = scripts.hostPaths(dir);
  const svc: scripts.ServiceDef = { name: "gluster-ha-node1", manager: "process", paths, args: [], logFile: "/dev/null", description: "" };
  const starts = join(dir, "starts");
  const up = join(dir, "up"); // the fake server "answers" while this file exists
  const volfile = `${paths.etc}/server.vol`;
  const ensure = (content: string, release = "r1", legacy = false): string =>
    scripts.ensureServingScript(svc, {
      stamp: scripts.servingStamp(release, content),
      probe: `test -e ${up}`,
      start: `${scripts.writeFile(volfile, content)}\necho start >> ${starts}\ntouch ${up}`,
      ...(legacy ? { legacyVolfile: { path: volfile, content } } : {}),
    });
  const run = (script: string): string => {
    const r = spawnSync("sh", ["-c", scripts.asBash(script)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const startCount = (): number => (existsSync(starts) ? readFileSync(starts, "utf8").split("\n").filter(Boolean).length : 0);

  assert.match(run(ensure("volume A")), /gluster-ha-node1 started release=r1 volfile=[0-9a-f]{16}/);
  assert.match(run(ensure("volume A")), /gluster-ha-node1 already serving release=r1/, "the bring-up started it: the server step does not");
  assert.equal(startCount(), 1);
  rmSync(up); // stamped but not answering (died): started again
  run(ensure("volume A"));
  assert.equal(startCount(), 2);
  run(ensure("volume B"));
  assert.equal(startCount(), 3, "another volfile: restarted");
  run(ensure("volume B", "r2"));
  assert.equal(startCount(), 4, "another runtime release: restarted");
  run(scripts.stopServiceScript(svc));
  assert.ok(!existsSync(scripts.servingStampPath(svc)), "a stop drops the stamp");
  run(ensure("volume B", "r2"));
  assert.equal(startCount(), 5, "stopped (even if something answers): started");
  // Before stamps: a bring-up finding its volfile installed and served leaves it; a server step restarts.
  rmSync(scripts.servingStampPath(svc));
  assert.match(run(ensure("volume B", "r3", true)), /already serving/);
  assert.equal(startCount(), 5);
  run(ensure("volume C", "r3", true));
  assert.equal(startCount(), 6, "legacy: another volfile is started");
  rmSync(scripts.servingStampPath(svc));
  run(ensure("volume C", "r3"));
  assert.equal(startCount(), 7, "no stamp, no legacy check: started");
});

test("retainData: false removes the bricks on destroy", async () => {
  const { mine } = await build("wipe", localArgs({ retainData: false }));
  assert.match(mine.find((r) => r.name === "wipe-node2-server")!.inputs.delete, /rm -rf \/s\/node2\/brick/);
});

test("the TSIG secret reaches nsupdate through the environment as a secret, never the script", async () => {
  const { mine, cluster } = await build("dns", localArgs());
  const dns = mine.find((r) => r.name === "dns-dns")!.inputs;
  assert.doesNotMatch(dns.create + dns.delete, /c2VjcmV0/);
  assert.ok("4dabf18193072939515e22adb298388d" in dns.environment, "the environment is a secret");
  assert.equal(unsecret(dns.environment).GLUSTER_HA_TSIG_SECRET, "c2VjcmV0");
  assert.match(dns.create, /nsupdate -k "\$keyfile" <<'GLUSTER_HA_NSUPDATE_EOF'\nserver 127\.0\.0\.1 24453\nzone gha\.test\.\nupdate delete cluster\.gha\.test\. A\n/);
  assert.match(dns.create, /dig \+short \+norecurse @127\.0\.0\.1 -p 24453 cluster\.gha\.test\. A/);
  assert.match(dns.delete, /update delete cluster\.gha\.test\. A\nsend\n/);
  assert.deepEqual((await value(cluster.records)).map((r) => r.value), ["127.0.0.2", "127.0.0.3"]);
});

test("the mount step verifies a marker write; the apache step runs configtest before graceful", async () => {
  const { mine, cluster } = await build("web", localArgs());
  const mount = mine.find((r) => r.name === "web-client-mount")!.inputs;
  assert.match(mount.create, /glusterfs\.js -f \/s\/client\/opt\/etc\/client\.vol \/s\/client\/mnt --foreground/);
  assert.match(mount.create, /\.gluster-ha-check-client/);
  assert.match(mount.delete, /fusermount -uz \/s\/client\/mnt/);
  const apache = mine.find((r) => r.name === "web-client-apache")!.inputs;
  const ctl = "env APACHE_CONFDIR=/s/apache apache2ctl";
  assert.ok(apache.create.indexOf(`${ctl} configtest`) < apache.create.indexOf(`${ctl} graceful`));
  assert.match(apache.create, /\/s\/apache\/sites-available\/gluster-ha-cluster\.gha\.test\.conf/);
  assert.match(apache.create, /DocumentRoot \/s\/client\/mnt\/www\n/);
  assert.equal(await value(cluster.siteUrl), "http://cluster.gha.test:24480/");
  assert.equal(await value(cluster.mountPoint), "/s/client/mnt");
});

test("ssh hosts get the runtime with CopyToRemote and run their steps with remote.Command", async () => {
  const args = localArgs({ dns: { mode: "hosts" }, apache: false, serviceManager: "systemd" });
  args.nodes[0]!.connection = { host: "10.0.0.2", privateKey: "PEM" };
  const { mine } = await build("ssh", args);
  const copy = mine.filter((r) => r.type === "command:remote:CopyToRemote");
  assert.deepEqual(copy.map((r) => r.name), ["ssh-node1-runtime-copy"]);
  assert.equal(copy[0]!.inputs.remotePath, "/s/node1/opt/releases/gluster-ha-0123456789abcdef.tar.gz");
  // The content hash and the host: a node moved to another host with the same paths gets a copy there.
  assert.deepEqual(copy[0]!.inputs.triggers, ["0123456789abcdef", "10.0.0.2:22"]);
  const server1 = mine.find((r) => r.name === "ssh-node1-server")!;
  assert.equal(server1.type, "command:remote:Command");
  assert.equal(unsecret(server1.inputs.connection).host, "10.0.0.2");
  assert.match(server1.inputs.create, /\/etc\/systemd\/system\/gluster-ha-node1\.service/);
  assert.match(server1.inputs.create, /systemctl restart gluster-ha-node1\.service/);
  assert.equal(mine.find((r) => r.name === "ssh-node2-server")!.type, "command:local:Command");
  assert.match(mine.find((r) => r.name === "ssh-client-dns-hosts")!.inputs.create, /127\.0\.0\.2\tcluster\.gha\.test\t# gluster-ha cluster\.gha\.test/);
  assert.ok(!mine.some((r) => r.name.endsWith("-apache")));
});

test("invalid input fails at preview with a ResourceError naming the field", () => {
  const args = localArgs();
  args.nodes[1]!.address = "127.0.0.300";
  assert.throws(
    () => new Cluster("bad", args, { runtimeBundle: bundle }),
    (e: unknown) => e instanceof pulumi.ResourceError && /nodes\[1\]\.address: must be an IPv4 address/.test(e.message),
  );
});
