// The whole cluster on one machine, as three "hosts": storage nodes on 127.0.0.2 and 127.0.0.3 and the
// client on 127.0.0.1, each with its own directories under a state dir; processes supervised by
// `gluster-ha service` (no systemd needed); a private BIND taking RFC 2136 updates; a private Apache
// serving the site from the mounted volume. Run it with ./run.sh up (see README.md).
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "gluster-ha";

const config = new pulumi.Config();
const stateDir = config.get("stateDir") ?? "/tmp/gluster-ha-local";
const serverPort = config.getNumber("serverPort") ?? 24400;
const dnsPort = config.getNumber("dnsPort") ?? 24453;
const webPort = config.getNumber("webPort") ?? 24480;
const zone = "gluster-ha.test";
const clusterName = `cluster.${zone}`;
const keyName = "gluster-ha-local";
const fixtures = `${__dirname}/fixtures`;

// The DNS server the records go to; it prints its TSIG secret, kept secret in the state.
const bind = new command.local.Command(
  "local-bind",
  {
    create: `bash ${fixtures}/bind.sh start ${stateDir}/bind ${dnsPort} ${zone} ${keyName}`,
    delete: `bash ${fixtures}/bind.sh stop ${stateDir}/bind`,
  },
  { additionalSecretOutputs: ["stdout"] },
);
const tsigSecret = bind.stdout.apply((out) => out.trim().split("\n").pop() ?? "");

// An Apache instance of its own (config dir, pidfile, logs), started by the Cluster's site step.
const apacheDir = `${stateDir}/apache`;
const apache = new command.local.Command("local-apache", {
  create: `bash ${fixtures}/apache.sh prepare ${apacheDir}`,
  delete: `bash ${fixtures}/apache.sh stop ${apacheDir}`,
});

const node = (name: string, address: string) => ({
  name,
  address,
  connection: { local: true },
  brickDir: `${stateDir}/${name}/brick`,
  installPrefix: `${stateDir}/${name}/opt`,
});

const cluster = new Cluster(
  "local",
  {
    nodes: [node("node1", "127.0.0.2"), node("node2", "127.0.0.3")],
    client: {
      address: "127.0.0.1",
      connection: { local: true },
      mountPoint: `${stateDir}/client/mnt`,
      installPrefix: `${stateDir}/client/opt`,
      // The records are published to the private BIND below, but the runtime's protocol/client resolves
      // names with the system resolver, which cannot be pointed at a DNS server on a high port without
      // editing /etc/resolv.conf. So the client lists both node addresses itself (same failover as the
      // round-robin name); `dig @127.0.0.1 -p 24453 cluster.gluster-ha.test` shows the published records.
      remoteHost: "127.0.0.2,127.0.0.3",
    },
    clusterName,
    listenPort: serverPort,
    serviceManager: "process",
    dns: {
      mode: "rfc2136",
      rfc2136: { server: "127.0.0.1", port: dnsPort, zone, keyName, keySecret: tsigSecret },
    },
    apache: {
      serverName: clusterName,
      port: webPort,
      configDir: apacheDir,
      control: `env APACHE_CONFDIR=${apacheDir} apache2ctl`,
    },
    options: {
      ioThreadCount: config.getNumber("ioThreadCount") ?? 8,
    },
  },
  { dependsOn: [bind, apache] },
);

export const siteUrl = pulumi.interpolate`http://127.0.0.1:${webPort}/`;
export const siteName = cluster.siteUrl;
export const records = cluster.records;
export const mountPoint = cluster.mountPoint;
export const nodeStatus = cluster.nodeStatus;
export const volfiles = cluster.volfiles;
export const runtimeRelease = cluster.runtimeRelease;
export const dnsServer = `127.0.0.1:${dnsPort}`;
// The seed's failover test, step by step. (A stopped server is not something `pulumi up` can see — the
// state says it runs — so node1 comes back through its supervisor, not the stack.)
const ghaCli = (host: string) => `node ${stateDir}/${host}/opt/current/bin/gluster-ha.js`;
export const tryNext = [
  `curl http://127.0.0.1:${webPort}/`,
  `dig +short @127.0.0.1 -p ${dnsPort} ${clusterName} A`,
  `kill node1's server: ${ghaCli("node1")} service stop gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run; curl again`,
  `echo "testing failure" > ${stateDir}/client/mnt/test.txt; ls ${stateDir}/node2/brick ${stateDir}/node1/brick`,
  `bring node1 back: ${ghaCli("node1")} service start gluster-ha-node1 --run-dir ${stateDir}/node1/opt/run; ls -lR ${stateDir}/client/mnt; ls ${stateDir}/node1/brick`,
  `heal info: ${ghaCli("node1")} heal info -f ${stateDir}/node1/opt/etc/server.vol --host 127.0.0.2`,
];
