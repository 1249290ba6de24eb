// The seed's setup on three hosts reached over SSH: two storage nodes replicating each other
// (server-side AFR), a client mounting /ha and serving it with Apache, round-robin DNS.
// Configure with `./run.sh pulumi config set KEY VALUE` (see README.md), then `./run.sh up`.
// The hosts need Node.js >= 20, root over SSH and (for the site) Apache; the component copies the
// runtime to them.
import * as pulumi from "@pulumi/pulumi";
import { readFileSync } from "node:fs";
import { Cluster } from "gluster-ha";

const config = new pulumi.Config();
const sshUser = config.get("sshUser") ?? "root";
const sshPort = config.getNumber("sshPort") ?? 22;
const privateKey =
  config.getSecret("sshPrivateKey") ??
  pulumi.secret(readFileSync(config.get("sshPrivateKeyPath") ?? `${process.env.HOME}/.ssh/id_ed25519`, "utf8"));
// hostKeys.<node1|node2|client>: each host's public key (`ssh-keyscan -t ed25519 HOST`, without the host
// name); the connection is refused unless the host presents it. Unset, host keys are not checked.
const hostKeys = config.getObject<Record<string, string>>("hostKeys") ?? {};
const ssh = (name: string, host: string) => ({ host, port: sshPort, user: sshUser, privateKey, ...(hostKeys[name] ? { hostKey: hostKeys[name] } : {}) });

const node1 = config.get("node1") ?? "10.0.0.2";
const node2 = config.get("node2") ?? "10.0.0.3";
const client = config.get("client") ?? "10.0.0.1";
const clusterName = config.get("clusterName") ?? "cluster.yourdomain.com";

// hostRoot: put each host's directories under HOSTROOT/<host>/ instead of the seed's /ha and
// /opt/gluster-ha — for trying the example with all three "hosts" on one machine (loopback addresses).
const hostRoot = config.get("hostRoot");
const dirs = (host: string, dataKey: "brickDir" | "mountPoint") =>
  hostRoot ? { [dataKey]: `${hostRoot}/${host}/${dataKey === "brickDir" ? "brick" : "mnt"}`, installPrefix: `${hostRoot}/${host}/opt` } : {};

// DNS: RFC 2136 to dnsServer when it is set (from the machine running Pulumi), else dnsMode (hosts on
// the client, or none: the records are only outputs).
const dnsServer = config.get("dnsServer");
const dns = dnsServer
  ? {
      mode: "rfc2136" as const,
      rfc2136: {
        server: dnsServer,
        port: config.getNumber("dnsPort") ?? 53,
        zone: config.require("dnsZone"),
        keyName: config.require("tsigKeyName"),
        keySecret: config.requireSecret("tsigSecret"),
      },
    }
  : { mode: (config.get("dnsMode") as "hosts" | "none" | undefined) ?? "hosts" };

// Apache on the client: the distribution's by default; apacheConfigDir/apacheControl select another instance.
const apache =
  config.getBoolean("apache") === false
    ? (false as const)
    : {
        serverName: clusterName,
        port: config.getNumber("apachePort") ?? 80,
        layout: (config.get("apacheLayout") as "debian" | "rhel" | undefined) ?? "debian",
        ...(config.get("apacheConfigDir") ? { configDir: config.get("apacheConfigDir") } : {}),
        ...(config.get("apacheControl") ? { control: config.get("apacheControl") } : {}),
      };

const cluster = new Cluster("seed", {
  nodes: [
    { name: "node1", address: node1, connection: ssh("node1", node1), ...dirs("node1", "brickDir") },
    { name: "node2", address: node2, connection: ssh("node2", node2), ...dirs("node2", "brickDir") },
  ],
  client: {
    address: client,
    connection: ssh("client", client),
    ...dirs("client", "mountPoint"),
    ...(config.get("remoteHost") ? { remoteHost: config.get("remoteHost") } : {}),
  },
  clusterName,
  ...(config.getNumber("listenPort") ? { listenPort: config.getNumber("listenPort") } : {}),
  serviceManager: (config.get("serviceManager") as "systemd" | "process" | undefined) ?? "systemd",
  dns,
  apache,
  options: { ioThreadCount: config.getNumber("ioThreadCount") ?? 8 },
});

export const siteUrl = cluster.siteUrl;
export const records = cluster.records;
export const mountPoint = cluster.mountPoint;
export const nodeStatus = cluster.nodeStatus;
export const volfiles = cluster.volfiles;
export const runtimeRelease = cluster.runtimeRelease;
