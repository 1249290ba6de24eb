// The component's pure planners: volfiles against the seed's files (golden, byte for byte), DNS record
// sets and nsupdate text, Apache sites per layout, systemd units (systemd-analyze verify).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { renderApacheSite } from "../../provider/planners/apache";
import { planDnsRecords, renderHostsLines, renderNsupdate } from "../../provider/planners/dns";
import { renderSystemdUnit } from "../../provider/planners/systemd";
import { hostPaths, restartServiceScript } from "../../provider/scripts";
import { renderClientVolfile, renderServerVolfile, type ServerVolfileInput } from "../../provider/planners/volfiles";

const seed = (f: string): string => readFileSync(join(__dirname, "..", "fixtures", "seed", f), "utf8");

/** The seed's inputs: 10.0.0.2/10.0.0.3, /ha, auth 10.0.0.*,127.0.0.1, the seed's option values. */
function seedServer(i: 0 | 1, extra: Partial<ServerVolfileInput> = {}): string {
  const nodes = [{ name: "node1", address: "10.0.0.2" }, { name: "node2", address: "10.0.0.3" }];
  return renderServerVolfile({
    self: { name: nodes[i]!.name, index: i },
    peer: { ...nodes[1 - i]!, index: 1 - i },
    brickDir: "/ha",
    replication: "server",
    transportTimeout: 5,
    threadCount: 8,
    cacheSize: "64MB",
    authAllow: ["10.0.0.*", "127.0.0.1"],
    ...extra,
  });
}

const seedClient = (): string =>
  renderClientVolfile({
    remoteHost: "cluster.yourdomain.com",
    replication: "server",
    nodes: [],
    transportTimeout: 10,
    aggregateSize: 131072,
    pageSize: 65536,
    pageCount: 16,
  });

test("node2's server volfile equals the seed's node2-server.vol byte for byte", () => {
  assert.equal(seedServer(1), seed("node2-server.vol"));
});

test("client volfile equals the seed's client.vol byte for byte", () => {
  assert.equal(seedClient(), seed("client.vol"));
});

test("node1's server volfile equals the seed's node1-server.vol except the seed's three typos", () => {
  // The seed's node1 file has typos that node2's does not: "Dataspce" (line 1), the peer comment names
  // "node2" where node2's file says "server1" (line 15), and "gfs-ds- locks" (line 35) which is not a
  // valid option name. Everything else must be identical.
  const fixed = seed("node1-server.vol")
    .replace("# Dataspce on Node1", "# Dataspace on Node1")
    .replace("# IP address of node2", "# IP address of server2")
    .replace("auth.ip.gfs-ds- locks.allow", "auth.ip.gfs-ds-locks.allow");
  const ours = seedServer(0);
  assert.equal(ours, fixed);
  const differing = ours.split("\n").map((l, i) => (l === seed("node1-server.vol").split("\n")[i] ? 0 : i + 1)).filter(Boolean);
  assert.deepEqual(differing, [1, 15, 35]);
});

test("bind-address and listen-port lines appear only when asked, after transport-type", () => {
  assert.equal(seedServer(0, { bindAddress: "0.0.0.0", listenPort: 6996 }), seedServer(0));
  const v = seedServer(0, { bindAddress: "127.0.0.2", listenPort: 24400 }).split("\n");
  const server = v.indexOf("volume server");
  assert.deepEqual(v.slice(server + 2, server + 5), ["option transport-type tcp/server", "option bind-address 127.0.0.2", "option listen-port 24400"]);
  // The peer connection uses the same port.
  assert.ok(v.includes("option remote-port 24400"));
  const client = renderClientVolfile({ remoteHost: "127.0.0.2,127.0.0.3", replication: "server", nodes: [], transportTimeout: 10, aggregateSize: 131072, pageSize: 65536, pageCount: 16, listenPort: 24400 });
  assert.match(client, /option remote-host 127\.0\.0\.2,127\.0\.0\.3 # FQDN of server\noption remote-port 24400\n/);
});

test("client-side replication: servers export locks without AFR, the client's AFR spans both nodes", () => {
  const server = seedServer(0, { replication: "client" });
  assert.doesNotMatch(server, /cluster\/afr|protocol\/client/);
  assert.match(server, /volume gfs\ntype performance\/io-threads\n(.*\n){2}subvolumes gfs-ds-locks\n/);
  const client = renderClientVolfile({
    remoteHost: "x",
    replication: "client",
    nodes: [{ name: "node1", address: "10.0.0.2" }, { name: "node2", address: "10.0.0.3" }],
    transportTimeout: 10, aggregateSize: 131072, pageSize: 65536, pageCount: 16,
  });
  assert.match(client, /volume cluster\ntype cluster\/afr\nsubvolumes gfs-node1 gfs-node2\nend-volume\n/);
  assert.match(client, /volume gfs-node2\ntype protocol\/client\noption transport-type tcp\/client\noption remote-host 10\.0\.0\.3\n/);
});

const recordCases: Array<{ name: string; addresses: string[]; ttl: number; want: string[] }> = [
  { name: "cluster.yourdomain.com", addresses: ["10.0.0.2", "10.0.0.3"], ttl: 3600, want: ["cluster.yourdomain.com. 3600 A 10.0.0.2", "cluster.yourdomain.com. 3600 A 10.0.0.3"] },
  { name: "Cluster.Example.ORG.", addresses: ["127.0.0.2", "127.0.0.3"], ttl: 60, want: ["cluster.example.org. 60 A 127.0.0.2", "cluster.example.org. 60 A 127.0.0.3"] },
  { name: "a.b.c", addresses: ["1.2.3.4", "1.2.3.4"], ttl: 0, want: ["a.b.c. 0 A 1.2.3.4"] },
];
for (const c of recordCases) {
  test(`planDnsRecords(${c.name}) gives one A record per distinct node address`, () => {
    assert.deepEqual(planDnsRecords(c.name, c.addresses, c.ttl).map((r) => `${r.name} ${r.ttl} ${r.type} ${r.value}`), c.want);
  });
}

test("nsupdate script replaces the name's A records atomically, and the removal only deletes", () => {
  const recs = planDnsRecords("cluster.gha.test", ["127.0.0.2", "127.0.0.3"], 3600);
  assert.equal(
    renderNsupdate(recs, { server: "127.0.0.1", port: 24453, zone: "gha.test" }),
    "server 127.0.0.1 24453\nzone gha.test.\nupdate delete cluster.gha.test. A\nupdate add cluster.gha.test. 3600 A 127.0.0.2\nupdate add cluster.gha.test. 3600 A 127.0.0.3\nsend\n",
  );
  assert.equal(renderNsupdate(recs, { server: "127.0.0.1", port: 53, zone: "gha.test." }, true), "server 127.0.0.1 53\nzone gha.test.\nupdate delete cluster.gha.test. A\nsend\n");
  assert.equal(renderHostsLines(recs, "cluster.gha.test"), "127.0.0.2\tcluster.gha.test\t# gluster-ha cluster.gha.test\n127.0.0.3\tcluster.gha.test\t# gluster-ha cluster.gha.test\n");
});

const siteCases = [
  { layout: "debian" as const, configDir: "/etc/apache2", port: 80, path: "/etc/apache2/sites-available/s.conf", link: "/etc/apache2/sites-enabled/s.conf", listen: false, url: "http://www.example.com/" },
  { layout: "rhel" as const, configDir: "/etc/httpd", port: 8080, path: "/etc/httpd/conf.d/s.conf", link: undefined, listen: true, url: "http://www.example.com:8080/" },
];
for (const c of siteCases) {
  test(`renderApacheSite puts a ${c.layout} site where that layout reads it`, () => {
    const plan = renderApacheSite({ siteName: "s", layout: c.layout, configDir: c.configDir, port: c.port, serverName: "www.example.com", documentRoot: "/ha/www" });
    assert.equal(plan.path, c.path);
    assert.equal(plan.enabledLink, c.link);
    assert.equal(plan.url, c.url);
    assert.equal(plan.content.includes(`Listen ${c.port}\n`), c.listen);
    assert.match(plan.content, new RegExp(`<VirtualHost \\*:${c.port}>\\n    ServerName www\\.example\\.com\\n    DocumentRoot /ha/www\\n    <Directory /ha/www>`));
  });
}

test("the Apache site passes apache2's own configtest", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gha-apache-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const plan = renderApacheSite({ siteName: "s", layout: "rhel", configDir: dir, port: 24481, serverName: "www.example.com", documentRoot: dir });
  writeFileSync(join(dir, "site.conf"), plan.content);
  const mods = "/usr/lib/apache2/modules";
  writeFileSync(
    join(dir, "httpd.conf"),
    `ServerRoot ${dir}\nPidFile ${dir}/pid\nErrorLog ${dir}/error.log\nLoadModule mpm_event_module ${mods}/mod_mpm_event.so\nLoadModule authz_core_module ${mods}/mod_authz_core.so\nInclude ${dir}/site.conf\n`,
  );
  const r = spawnSync("apache2", ["-t", "-f", join(dir, "httpd.conf")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr + r.stdout, /Syntax OK/);
});

test("systemd units pass systemd-analyze verify", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gha-units-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const units = {
    "gluster-ha-node1.service": renderSystemdUnit({
      description: "gluster-ha storage server node1 (glusterfsd)",
      execStart: ["/usr/bin/env", "node", "/opt/gluster-ha/current/bin/glusterfsd.js", "-f", "/opt/gluster-ha/etc/server.vol"],
      wantedBy: "multi-user.target",
    }),
    "gluster-ha-client.service": renderSystemdUnit({
      description: "gluster-ha client mount /mnt/my ha (glusterfs)",
      execStart: ["/usr/bin/env", "node", "/opt/gluster-ha/current/bin/glusterfs.js", "-f", "/opt/x.vol", "/mnt/my ha", "--foreground"],
      mountPoint: "/mnt/my ha",
      wantedBy: "remote-fs.target",
    }),
  };
  for (const [name, text] of Object.entries(units)) {
    writeFileSync(join(dir, name), text);
    assert.match(text, /^\[Unit\]\n(.*\n)*\[Service\]\nType=simple\nExecStart=\/usr\/bin\/env node (.*\n)*Restart=on-failure\n(.*\n)*\[Install\]\nWantedBy=/);
  }
  assert.match(units["gluster-ha-client.service"], /ExecStart=.* "\/mnt\/my ha" --foreground\nExecStopPost=-\/bin\/fusermount -uz "\/mnt\/my ha"\n/);
  // systemd-analyze verify works without a running systemd (this machine has none).
  const r = spawnSync("systemd-analyze", ["verify", ...Object.keys(units).map((u) => join(dir, u))], { encoding: "utf8", env: { ...process.env, SYSTEMD_LOG_LEVEL: "warning" } });
  const complaints = (r.stderr ?? "").split("\n").filter((l) => l.includes(dir));
  assert.deepEqual(complaints, [], r.stderr);
  assert.equal(r.status, 0, r.stderr);
});

test("services and the CLIs run node with the V8 flags of runtime/cli/node-flags.json", () => {
  const { flags, env } = JSON.parse(readFileSync(join(__dirname, "..", "..", "runtime", "cli", "node-flags.json"), "utf8")) as { flags: string[]; env: Record<string, string> };
  assert.ok(flags.length > 0);
  const command = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), "node", ...flags].join(" ");
  const paths = hostPaths("/opt/gluster-ha");
  const def = { name: "gluster-ha-node1", paths, args: [`${paths.bin}/glusterfsd.js`, "-f", "/opt/gluster-ha/etc/server.vol"], logFile: "/x.log", description: "d" };
  for (const manager of ["process", "systemd"] as const) {
    const script = restartServiceScript({ ...def, manager });
    assert.ok(script.includes(`${manager === "process" ? "-- env" : "ExecStart=/usr/bin/env"} ${command} /opt/gluster-ha/current/bin/glusterfsd.js -f`), `${manager}: ${script}`);
  }
  // The built CLIs: their #! line passes the flags, and runs (env -S splits it).
  const bin = join(__dirname, "..", "..", "dist", "bin", "glusterfsd.js");
  assert.equal(readFileSync(bin, "utf8").split("\n")[0], `#!/usr/bin/env -S ${command}`);
  const r = spawnSync(bin, ["--help"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /glusterfsd/);
  // ...and what the #! line sets reaches the process (env -S applies the assignments).
  const probe = join(__dirname, "..", "..", "dist", "bin", "env-probe.js");
  writeFileSync(probe, `${readFileSync(bin, "utf8").split("\n")[0]}\nconsole.log(JSON.stringify({ env: process.env, argv: process.execArgv }));\n`, { mode: 0o755 });
  try {
    const seen = JSON.parse(spawnSync(probe, [], { encoding: "utf8", env: { PATH: process.env.PATH } }).stdout) as { env: Record<string, string>; argv: string[] };
    for (const [k, v] of Object.entries(env)) assert.equal(seen.env[k], v, k);
    assert.deepEqual(seen.argv, flags);
  } finally {
    rmSync(probe, { force: true });
  }
});
