// The seed's setup on three real hosts reached over SSH: two storage nodes replicating each other
// (server-side AFR), a client mounting /ha and serving it with Apache, round-robin DNS by RFC 2136.
// Configure with `pulumi config set` (addresses, ssh user/key, DNS server and TSIG key), then `pulumi up`.
// The hosts need Node.js >= 20 and root over SSH; the runtime is copied to them by the component.
import * as pulumi from "@pulumi/pulumi";
import { readFileSync } from "node:fs";
import { Cluster } from "gluster-ha";

const config = new pulumi.Config();
const sshUser = config.get("sshUser") ?? "root";
const sshPort = config.getNumber("sshPort") ?? 22;
const privateKey = config.getSecret("sshPrivateKey") ?? pulumi.secret(readFileSync(config.get("sshPrivateKeyPath") ?? `${process.env.HOME}/.ssh/id_ed25519`, "utf8"));
const ssh = (host: string) => ({ host, port: sshPort, user: sshUser, privateKey });

const node1 = config.get("node1") ?? "10.0.0.2";
const node2 = config.get("node2") ?? "10.0.0.3";
const client = config.get("client") ?? "10.0.0.1";
const clusterName = config.get("clusterName") ?? "cluster.yourdomain.com";
const dnsServer = config.get("dnsServer");

const cluster = new Cluster("seed", {
  nodes: [
    { name: "node1", address: node1, connection: ssh(node1) },
    { name: "node2", address: node2, connection: ssh(node2) },
  ],
  client: { address: client, connection: ssh(client) },
  clusterName,
  serviceManager: (config.get("serviceManager") as "systemd" | "process" | undefined) ?? "systemd",
  dns: dnsServer
    ? {
        mode: "rfc2136",
        rfc2136: {
          server: dnsServer,
          port: config.getNumber("dnsPort") ?? 53,
          zone: config.require("dnsZone"),
          keyName: config.require("tsigKeyName"),
          keySecret: config.requireSecret("tsigSecret"),
        },
      }
    : { mode: "hosts" },
  apache: { serverName: clusterName, layout: (config.get("apacheLayout") as "debian" | "rhel" | undefined) ?? "debian" },
});

export const siteUrl = cluster.siteUrl;
export const records = cluster.records;
export const nodeStatus = cluster.nodeStatus;
export const volfiles = cluster.volfiles;
