// The component's inputs: schema/cluster.json is the one source — provider/args.ts is generated from it
// (and must be current), ajv applies the seed's defaults, and bad input names the field.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../../runtime/core/errors";
import type { ClusterArgs } from "../../provider/args";
import { ARGS_PATH, SCHEMA_PATH, generateArgs } from "../../provider/codegen/gen-args";
import { fieldName, resolveClusterConfig } from "../../provider/validate";

const seedArgs = (): ClusterArgs => ({
  nodes: [
    { name: "node1", address: "10.0.0.2", connection: { host: "10.0.0.2" } },
    { name: "node2", address: "10.0.0.3", connection: { host: "10.0.0.3", privateKey: "KEY" } },
  ],
  client: { address: "10.0.0.1", connection: { local: true } },
  clusterName: "cluster.yourdomain.com",
});

test("provider/args.ts is what gen-args prints from schema/cluster.json", () => {
  const generated = generateArgs(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")));
  assert.equal(readFileSync(ARGS_PATH, "utf8"), generated, "run: node --import tsx provider/codegen/gen-args.ts");
});

test("every schema property appears in the generated Args types, and nothing else", () => {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, "utf8"));
  const args = readFileSync(ARGS_PATH, "utf8");
  const block = (name: string): string[] => {
    const m = new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`).exec(args);
    assert.ok(m, `${name} missing`);
    return [...m[1]!.matchAll(/^  (\w+)\??:/gm)].map((x) => x[1]!);
  };
  assert.deepEqual(block("ClusterArgs"), Object.keys(schema.properties));
  for (const [def, s] of Object.entries<any>(schema.definitions)) {
    if (!s.properties) continue;
    const name = `${def[0]!.toUpperCase()}${def.slice(1)}`;
    assert.deepEqual(block(`${name}Args`), Object.keys(s.properties), def);
    assert.deepEqual(block(`${name}Config`), Object.keys(s.properties), def);
  }
});

test("the seed's defaults are applied: /ha, 6996, timeouts 5/10, io-threads 8/64MB, write-behind, read-ahead, ttl 3600", () => {
  const c = resolveClusterConfig(seedArgs());
  assert.equal(c.nodes[0]!.brickDir, "/ha");
  assert.equal(c.client.mountPoint, "/ha");
  assert.equal(c.listenPort, 6996);
  assert.deepEqual(c.options, {
    serverTransportTimeout: 5,
    clientTransportTimeout: 10,
    ioThreadCount: 8,
    ioCacheSize: "64MB",
    writeBehindAggregateSize: 131072,
    readAheadPageSize: 65536,
    readAheadPageCount: 16,
  });
  assert.equal(c.dns.mode, "none");
  assert.equal(c.dns.ttl, 3600);
  assert.equal(c.apache, false);
  assert.equal(c.replication, "server");
  assert.equal(c.retainData, true);
  assert.deepEqual(c.authAllow, ["10.0.0.2", "10.0.0.3", "10.0.0.1", "127.0.0.1"]);
  assert.equal(c.nodes[1]!.bindAddress, "10.0.0.3");
  assert.equal(c.client.remoteHost, "cluster.yourdomain.com");
  assert.equal(c.nodes[0]!.connection.port, 22);
  assert.equal(c.nodes[0]!.connection.user, "root");
});

test("apache defaults are filled inside its union branch, configDir by layout", () => {
  const deb = resolveClusterConfig({ ...seedArgs(), apache: { serverName: "www.example.com" } });
  assert.ok(deb.apache);
  assert.deepEqual([deb.apache.port, deb.apache.documentRoot, deb.apache.layout, deb.apache.configDir, deb.apache.control], [80, "www", "debian", "/etc/apache2", "apachectl"]);
  const rhel = resolveClusterConfig({ ...seedArgs(), apache: { serverName: "www.example.com", layout: "rhel" } });
  assert.ok(rhel.apache);
  assert.equal(rhel.apache.configDir, "/etc/httpd");
});

test("a secret given as an Output passes validation and comes back untouched", () => {
  const key = pulumi.secret("PEM");
  const args = seedArgs();
  args.nodes[0]!.connection.privateKey = key;
  const c = resolveClusterConfig(args);
  assert.equal(c.nodes[0]!.connection.privateKey, key);
});

const bad: Array<[string, (a: ClusterArgs) => unknown, string]> = [
  ["a bad node address", (a) => (a.nodes[1]!.address = "10.0.0.300"), "nodes[1].address: must be an IPv4 address"],
  ["one node", (a) => a.nodes.pop(), "nodes: must list exactly two storage nodes"],
  ["three nodes", (a) => a.nodes.push({ ...a.nodes[0]!, name: "node3" }), "nodes: must list exactly two storage nodes"],
  ["no cluster name", (a) => delete (a as Partial<ClusterArgs>).clusterName, "clusterName: is required"],
  ["a bare host name", (a) => (a.clusterName = "cluster"), "clusterName: must be a fully qualified domain name (e.g. cluster.example.com)"],
  ["a relative brick", (a) => (a.nodes[0]!.brickDir = "ha"), "nodes[0].brickDir: must be an absolute path"],
  ["an ssh connection without host", (a) => (a.nodes[0]!.connection = { user: "x" }), "nodes[0].connection.host: is required"],
  ["an unknown field", (a) => Object.assign(a.client, { mountpoint: "/x" }), "client.mountpoint: is not a known field"],
  ["apache: true", (a) => Object.assign(a, { apache: true }), "apache: must be false or an object with serverName"],
  ["apache without serverName", (a) => Object.assign(a, { apache: { port: 8080 } }), "apache.serverName: is required"],
  ["a port out of range", (a) => (a.listenPort = 70000), "listenPort: must be <= 65535"],
  ["an unknown service manager", (a) => Object.assign(a, { serviceManager: "runit" }), 'serviceManager: must be one of "systemd", "process"'],
  ["rfc2136 without its settings", (a) => (a.dns = { mode: "rfc2136" }), "dns.rfc2136: is required"],
  ["an io-threads count over 64", (a) => (a.options = { ioThreadCount: 65 }), "options.ioThreadCount: must be <= 64"],
  ["two nodes of one name", (a) => (a.nodes[1]!.name = "node1"), 'nodes[1].name: must differ from nodes[0].name ("node1")'],
  [
    "a zone not holding the cluster name",
    (a) => (a.dns = { mode: "rfc2136", rfc2136: { server: "10.0.0.9", zone: "other.org", keyName: "k", keySecret: "s" } }),
    'dns.rfc2136.zone: "other.org" does not contain clusterName "cluster.yourdomain.com"',
  ],
  ["a document root escaping the mount", (a) => (a.apache = { serverName: "www.example.com", documentRoot: "www/../.." }), "apache.documentRoot: must stay inside the mount (no ..)"],
];
for (const [what, mutate, message] of bad) {
  test(`${what} is refused naming the field: ${message}`, () => {
    const args = seedArgs();
    mutate(args);
    assert.throws(() => resolveClusterConfig(args), (e: unknown) => e instanceof ConfigError && e.message.split("; ").includes(message));
  });
}

test("every problem is reported at once", () => {
  const args = seedArgs();
  args.nodes[0]!.address = "x";
  args.client.address = "y";
  assert.throws(() => resolveClusterConfig(args), { message: "nodes[0].address: must be an IPv4 address; client.address: must be an IPv4 address" });
});

test("fieldName turns JSON pointers into the paths users write", () => {
  assert.equal(fieldName("/nodes/1/connection", "host"), "nodes[1].connection.host");
  assert.equal(fieldName(""), "(root)");
});
