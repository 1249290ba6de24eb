// The Cluster component. The constructor reads like the seed's steps: prepare the hosts, ship the
// runtime, install the volfiles and start both servers, publish DNS, mount on the client, the Apache
// site. Every step is one @pulumi/command resource (local or over SSH) running an idempotent script.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../runtime/core/errors";
import type { ClusterArgs, ClusterConfig, ConnectionConfig } from "./args";
import { renderApacheSite, type ApacheSitePlan } from "./planners/apache";
import { hostsMarker, planDnsRecords, renderHostsLines, renderNsupdate, type DnsRecord } from "./planners/dns";
import { renderClientVolfile, renderServerVolfile } from "./planners/volfiles";
import { planGlusterfsVolume, type GlusterfsPlan } from "./engines/glusterfs";
import { glusterfsSteps } from "./engines/glusterfs-steps";
import { engineGuard, guardedDependsOn } from "./engines/guard";
import { connectionTarget, nodeIdentity } from "./planners/replace";
import { bundleRuntime, type RuntimeBundle } from "./runtime-bundle";
import * as scripts from "./scripts";
import { resolveClusterConfig } from "./validate";

export interface ClusterResourceOptions extends pulumi.ComponentResourceOptions {
  /** A prebuilt runtime bundle (tests); by default the package's dist/ is bundled. */
  runtimeBundle?: RuntimeBundle;
}

interface Host {
  /** Resource-name piece and service suffix: node1, node2, client. */
  key: string;
  connection: ConnectionConfig;
  paths: scripts.HostPaths;
}

interface Steps {
  create: string;
  update?: string;
  delete: string;
}

/** Everything the component will do, computed from the inputs alone (no resources): unit-testable. */
export interface ClusterPlan {
  volfiles: Record<string, string>;
  records: DnsRecord[];
  site?: ApacheSitePlan;
  /** engine glusterfs: the volume, its options and the mount (GlusterFS renders its own volfiles). */
  glusterfs?: GlusterfsPlan;
}

/** engine glusterfs: the component's inputs as a GlusterFS volume plan. */
export function planGlusterfs(c: ClusterConfig): GlusterfsPlan {
  return planGlusterfsVolume({
    volumeName: c.volumeName,
    nodes: c.nodes,
    arbiter: c.arbiter,
    options: c.options,
    authAllow: c.authAllow,
    remoteHost: c.client.remoteHost,
    mountPoint: c.client.mountPoint,
  });
}

export function planCluster(c: ClusterConfig): ClusterPlan {
  const o = c.options;
  const volfiles: Record<string, string> = {};
  const bundled = c.engine === "bundled";
  (bundled ? c.nodes : []).forEach((n, i) => {
    const peer = c.nodes[1 - i]!;
    volfiles[n.name] = renderServerVolfile({
      self: { name: n.name, index: i },
      peer: { name: peer.name, index: 1 - i, address: peer.address },
      brickDir: n.brickDir,
      replication: c.replication,
      transportTimeout: o.serverTransportTimeout,
      threadCount: o.ioThreadCount,
      cacheSize: o.ioCacheSize,
      authAllow: c.authAllow,
      bindAddress: n.bindAddress,
      listenPort: c.listenPort,
    });
  });
  if (bundled) volfiles[c.client.name] = renderClientVolfile({
    remoteHost: c.client.remoteHost,
    replication: c.replication,
    nodes: c.nodes,
    transportTimeout: o.clientTransportTimeout,
    aggregateSize: o.writeBehindAggregateSize,
    pageSize: o.readAheadPageSize,
    pageCount: o.readAheadPageCount,
    listenPort: c.listenPort,
  });
  const records = planDnsRecords(c.clusterName, c.nodes.map((n) => n.address), c.dns.ttl);
  const site = c.apache
    ? renderApacheSite({
        siteName: `gluster-ha-${c.clusterName.replace(/\.$/, "")}`,
        layout: c.apache.layout,
        configDir: c.apache.configDir,
        port: c.apache.port,
        serverName: c.apache.serverName,
        documentRoot: `${c.client.mountPoint.replace(/\/$/, "")}/${c.apache.documentRoot.replace(/\/$/, "")}`,
      })
    : undefined;
  return { volfiles, records, site, ...(bundled ? {} : { glusterfs: planGlusterfs(c) }) };
}

export class Cluster extends pulumi.ComponentResource {
  /** The rendered volfiles, by node name and client name. */
  public readonly volfiles: pulumi.Output<Record<string, string>>;
  /** The cluster name's A records (one per node). */
  public readonly records: pulumi.Output<DnsRecord[]>;
  public readonly mountPoint: pulumi.Output<string>;
  /** The Apache site's URL, when apache is set. */
  public readonly siteUrl: pulumi.Output<string | undefined>;
  /** Per node: the status line its server step printed (address, port, runtime release). */
  public readonly nodeStatus: pulumi.Output<Record<string, string>>;
  /** The runtime release (content hash) deployed to the hosts. */
  public readonly runtimeRelease: pulumi.Output<string>;

  constructor(name: string, args: ClusterArgs, opts: ClusterResourceOptions = {}) {
    const { runtimeBundle, ...componentOpts } = opts;
    super("gluster-ha:index:Cluster", name, {}, componentOpts);
    let c: ClusterConfig;
    let bundle: RuntimeBundle;
    try {
      c = resolveClusterConfig(args);
      // GlusterFS needs no runtime on the hosts: nothing to bundle.
      bundle = runtimeBundle ?? (c.engine === "bundled" ? bundleRuntime() : { hash: "", archivePath: "", version: "" });
    } catch (e) {
      if (e instanceof ConfigError) throw new pulumi.ResourceError(e.message, this);
      throw e;
    }
    const plan = planCluster(c);
    const port = c.listenPort;
    const parent = this;

    const run = (resource: string, host: Host, steps: Steps, deps: pulumi.Resource[], extraDeps?: pulumi.ResourceOptions["dependsOn"]) => {
      const common = {
        create: scripts.asBash(steps.create),
        update: steps.update === undefined ? undefined : scripts.asBash(steps.update),
        delete: scripts.asBash(steps.delete),
      };
      const dependsOn = extraDeps === undefined ? deps : pulumi.output(extraDeps).apply((d) => [...deps, ...(Array.isArray(d) ? d : [d])]);
      const options = { parent, dependsOn };
      return host.connection.local
        ? new command.local.Command(`${name}-${resource}`, common, options)
        : new command.remote.Command(`${name}-${resource}`, { ...common, connection: sshConnection(host.connection) }, options);
    };

    const nodeHosts: Host[] = c.nodes.map((n) => ({ key: n.name, connection: n.connection, paths: scripts.hostPaths(n.installPrefix) }));
    const clientHost: Host = { key: c.client.name, connection: c.client.connection, paths: scripts.hostPaths(c.client.installPrefix) };

    // Engine switches are refused at preview (the data would have to be migrated); every first step waits for the check.
    const gate = guardedDependsOn(engineGuard(name, c.engine, this), componentOpts.dependsOn);
    const bundled = c.engine === "bundled";
    const glusterfs = bundled ? undefined : glusterfsSteps(c, plan.glusterfs!, nodeHosts, clientHost, run, gate);

    // 1. Prepare every host: Node.js >= 20, FUSE, directories. (Steps 1-3 and 5 are the bundled
    //    engine's; engine glusterfs has its own, from provider/engines/glusterfs-steps.ts.)
    const prepared = new Map<string, pulumi.Resource>();
    for (const [host, extraDirs] of !bundled ? [] : [
      ...nodeHosts.map((h, i) => [h, [c.nodes[i]!.brickDir]] as const),
      [clientHost, [c.client.mountPoint]] as const,
    ]) {
      const prepare = scripts.prepareScript(host.paths, [...extraDirs]);
      // The component's own dependsOn (e.g. the DNS server or Apache instance it uses) gates the first step.
      prepared.set(host.key, run(`${host.key}-prepare`, host, { create: prepare, update: prepare, delete: scripts.unprepareScript(host.paths) }, [], gate));
    }

    // 2. The runtime, bundled once, copied to each host; a new content hash means a new release.
    const runtimeInstalled = new Map<string, pulumi.Resource>();
    for (const host of bundled ? [...nodeHosts, clientHost] : []) {
      const deps = [prepared.get(host.key)!];
      let archiveOnHost = bundle.archivePath;
      if (!host.connection.local) {
        archiveOnHost = `${host.paths.prefix}/releases/gluster-ha-${bundle.hash}.tar.gz`;
        deps.push(
          new command.remote.CopyToRemote(
            `${name}-${host.key}-runtime-copy`,
            {
              connection: sshConnection(host.connection),
              source: new pulumi.asset.FileAsset(bundle.archivePath),
              remotePath: archiveOnHost,
              // The host too: a node moved to another host (same paths) gets the runtime copied there,
              // whatever the provider makes of a changed connection.
              triggers: [bundle.hash, connectionTarget(host.connection)],
            },
            { parent, dependsOn: deps },
          ),
        );
      }
      // Names the host: a re-copy (above) re-runs the install, which removes the copied archive.
      const install = `# on ${connectionTarget(host.connection)}\n${scripts.installRuntimeScript(host.paths, bundle.hash, archiveOnHost, !host.connection.local)}`;
      runtimeInstalled.set(
        host.key,
        run(`${host.key}-runtime`, host, { create: install, update: install, delete: scripts.removeRuntimeScript(host.paths, bundle.hash) }, deps),
      );
    }

    // 3. Volfiles and servers. A node with a new identity (address, host — SSH host, port or user — or
    //    brick directory) is another node: its bring-up and join steps are named by the identity, so the
    //    new node's are created: it starts first (on a new host after its prepare and runtime steps ran
    //    there), the join (run on the survivor) heals it FULLY, only then do the server steps switch the
    //    survivor's volfile to the new peer (rolling), then the client's. The old node's steps, no longer
    //    in the program, are deleted last (Pulumi deletes removed resources after every create and
    //    update), stopping its server — over the old connection, on the old host.
    //    (Not `triggers`: with an update script, @pulumi/command 1.2.1 runs the update for changed
    //    triggers, even with replaceOnChanges — seen with the real engine in test/e2e/replace-node.test.ts.)
    const nodeService = (i: number): scripts.ServiceDef => {
      const n = c.nodes[i]!;
      const host = nodeHosts[i]!;
      const volfile = `${host.paths.etc}/server.vol`;
      return {
        name: `gluster-ha-${n.name}`,
        manager: c.serviceManager,
        paths: host.paths,
        args: [`${host.paths.bin}/glusterfsd.js`, "-f", volfile, "--log-file", `${host.paths.log}/glusterfsd.log`],
        logFile: `${host.paths.log}/glusterfsd.log`,
        description: `gluster-ha storage server ${n.name} (glusterfsd)`,
      };
    };
    const probeHostOf = (n: ClusterConfig["nodes"][number]): string => (n.bindAddress === "0.0.0.0" ? n.address : n.bindAddress!);
    const identities = c.nodes.map((n) => nodeIdentity(n));
    // Bring-up and server steps both need node i's server running its volfile and this release; the
    // first to run starts it, the other finds it serving (the stamp): a first deploy starts each once.
    const ensureServing = (i: number, legacy: boolean): string => {
      const n = c.nodes[i]!;
      const host = nodeHosts[i]!;
      const volfile = `${host.paths.etc}/server.vol`;
      const content = plan.volfiles[n.name]!;
      return scripts.ensureServingScript(nodeService(i), {
        stamp: scripts.servingStamp(bundle.hash, content),
        probe: `node ${scripts.sh(`${host.paths.bin}/gluster-ha.js`)} probe ${scripts.sh(`${probeHostOf(n)}:${port}`)} gfs --timeout 2`,
        start: [
          scripts.installVolfileScript(volfile, content, `${host.paths.bin}/glusterfsd.js`),
          scripts.restartServiceScript(nodeService(i)),
          scripts.waitForServerScript(host.paths, probeHostOf(n), port, "gfs", 30, nodeService(i).logFile),
        ].join("\n"),
        // A stack deployed before stamps: a node already serving this very volfile is not restarted by
        // its bring-up (the server steps restart it, rolling, if the release changed).
        ...(legacy ? { legacyVolfile: { path: volfile, content } } : {}),
      });
    };
    const bringUps: pulumi.Resource[] = (bundled ? c.nodes : []).map((n, i) => {
      const host = nodeHosts[i]!;
      const svc = nodeService(i);
      const volfile = `${host.paths.etc}/server.vol`;
      const id = identities[i]!;
      const up = [
        `# node ${id}, runtime release ${bundle.hash}`,
        scripts.writeIdentityScript(svc, id),
        ensureServing(i, true),
        `echo "${n.name} brought up as ${id}"`,
      ].join("\n");
      return run(`${id}-bringup`, host, {
        create: up,
        // Option changes are the server step's (rolling); this step only marks the node's arrival.
        update: `echo "${n.name} is ${id}"`,
        // The old incarnation's server stops unless the new one took its service over on the same host.
        delete: scripts.ifIdentityScript(svc, id, [scripts.stopServiceScript(svc), `rm -f ${scripts.sh(volfile)}`].join("\n")),
      }, [runtimeInstalled.get(n.name)!]);
    });
    const joins: pulumi.Resource[] = (bundled ? c.nodes : []).map((n, j) => {
      const i = 1 - j;
      const survivor = c.nodes[i]!;
      const host = nodeHosts[i]!;
      const staged = `${host.paths.etc}/server.vol.join-${n.name}`;
      const heal = [
        `# ${survivor.name} heals ${identities[j]} in fully`,
        // The survivor's server volfile as it will be with the new peer; its running one is switched later.
        scripts.installVolfileScript(staged, plan.volfiles[survivor.name]!, `${host.paths.bin}/glusterfsd.js`),
        scripts.fullHealScript(host.paths, staged, probeHostOf(survivor), `${host.paths.run}/heal-join-${identities[j]}.json`),
        `rm -f ${scripts.sh(staged)}`,
        `echo "${n.name} joined: full heal from ${survivor.name} complete"`,
      ].join("\n");
      return run(`${identities[j]}-join`, host, { create: heal, update: `echo "${n.name} is ${identities[j]}"`, delete: `rm -f ${scripts.sh(staged)}` },
        [bringUps[i]!, bringUps[j]!]);
    });

    const servers: Array<command.local.Command | command.remote.Command> = glusterfs ? [...glusterfs.servers] : [];
    (bundled ? c.nodes : []).forEach((n, i) => {
      const host = nodeHosts[i]!;
      const volfile = `${host.paths.etc}/server.vol`;
      const svc = nodeService(i);
      const probeHost = probeHostOf(n);
      // Started already by the bring-up on a first deploy or a replacement (then not again); restarted
      // for a new volfile or runtime release.
      const start = [`# runtime release ${bundle.hash}`, ensureServing(i, false)];
      const status = `echo "${n.name} up ${probeHost}:${port} release=${bundle.hash}"`;
      const stop = [
        scripts.stopServiceScript(svc),
        `rm -f ${scripts.sh(volfile)}`,
        ...(c.retainData ? [] : [`rm -rf ${scripts.sh(n.brickDir)}`]),
      ];
      servers.push(
        run(
          `${n.name}-server`,
          host,
          {
            create: [...start, status].join("\n"),
            // Server-side replication: wait for heal before the next node restarts (client-side: the
            // client's own AFR heals on access).
            update: [...start, ...(c.replication === "server" ? [scripts.waitForHealScript(host.paths, volfile, n.address)] : []), status].join("\n"),
            delete: stop.join("\n"),
          },
          [runtimeInstalled.get(n.name)!, bringUps[i]!, ...joins, ...servers],
        ),
      );
    });

    // 4. DNS: the round-robin A records, before the client resolves the cluster name.
    const dns = this.publishDns(name, c, plan.records, clientHost, servers, run);

    // 5. Mount on the client; verify with a write and read of a marker file.
    const clientVolfile = `${clientHost.paths.etc}/client.vol`;
    const mountSvc: scripts.ServiceDef = {
      name: `gluster-ha-${c.client.name}`,
      manager: c.serviceManager,
      paths: clientHost.paths,
      args: [`${clientHost.paths.bin}/glusterfs.js`, "-f", clientVolfile, c.client.mountPoint, "--foreground", "--log-file", `${clientHost.paths.log}/glusterfs.log`],
      logFile: `${clientHost.paths.log}/glusterfs.log`,
      description: `gluster-ha client mount ${c.client.mountPoint} (glusterfs)`,
      mountPoint: c.client.mountPoint,
    };
    const mountSteps = !bundled ? "" : [
      `# runtime release ${bundle.hash}`,
      scripts.installVolfileScript(clientVolfile, plan.volfiles[c.client.name]!, `${clientHost.paths.bin}/glusterfs.js`),
      `mkdir -p ${scripts.sh(c.client.mountPoint)}`,
      // The last server step returns once its server answers; its peers link to it after their reconnect
      // backoff. Mount once every node replicates, so the first writes reach both bricks.
      ...(c.replication === "server" ? [scripts.waitForReplicationScript(clientHost.paths, c.nodes.map(probeHostOf), port)] : []),
      // Only now (a remount leaves the mount point empty until the new client mounts): a stale mount
      // from a crash, or the running one.
      scripts.unmountScript(c.client.mountPoint).replace(/\nrmdir .*$/, ""),
      scripts.restartServiceScript(mountSvc),
      scripts.waitForMountScript(c.client.mountPoint),
      scripts.markerCheckScript(c.client.mountPoint, c.client.name),
    ].join("\n");
    const mount = glusterfs ? glusterfs.mount(dns ? [dns] : []) : run(
      `${c.client.name}-mount`,
      clientHost,
      {
        create: mountSteps,
        update: mountSteps,
        delete: [scripts.stopServiceScript(mountSvc), scripts.unmountScript(c.client.mountPoint), `rm -f ${scripts.sh(clientVolfile)}`].join("\n"),
      },
      [runtimeInstalled.get(c.client.name)!, ...servers, ...(dns ? [dns] : [])],
    );

    // 6. Apache: the site config pointing at the mount, checked with configtest, then reload.
    let siteUrl: string | undefined;
    if (c.apache && plan.site) {
      const site = plan.site;
      const ctl = c.apache.control;
      const docRoot = `${c.client.mountPoint.replace(/\/$/, "")}/${c.apache.documentRoot.replace(/\/$/, "")}`;
      siteUrl = site.url;
      const enable = site.enabledLink ? `ln -sfn ${scripts.sh(site.path)} ${scripts.sh(site.enabledLink)}` : "";
      const up = [
        `mkdir -p ${scripts.sh(docRoot)}`,
        `if [ ! -s ${scripts.sh(`${docRoot}/index.html`)} ]; then`,
        scripts.writeFile(`${docRoot}/index.html`, c.apache.defaultPage),
        "fi",
        scripts.writeFile(site.path, site.content),
        enable,
        `${ctl} configtest`,
        // graceful starts Apache when it is not running, reloads it otherwise.
        `${ctl} graceful`,
        waitForHttp(c.apache.port, c.apache.serverName),
        `echo "site ${site.url}"`,
      ].filter(Boolean).join("\n");
      run(
        `${c.client.name}-apache`,
        clientHost,
        {
          create: up,
          update: up,
          delete: [
            `rm -f ${scripts.sh(site.path)}${site.enabledLink ? ` ${scripts.sh(site.enabledLink)}` : ""}`,
            `if ${ctl} configtest >/dev/null 2>&1; then ${ctl} graceful || true; fi`,
          ].join("\n"),
        },
        [mount],
      );
    }

    this.volfiles = pulumi.output(plan.volfiles);
    this.records = pulumi.output(plan.records);
    this.mountPoint = pulumi.output(c.client.mountPoint);
    this.siteUrl = pulumi.output(siteUrl);
    this.runtimeRelease = pulumi.output(bundle.hash);
    this.nodeStatus = pulumi.all(servers.map((s) => s.stdout)).apply((outs) =>
      Object.fromEntries(c.nodes.map((n, i) => [n.name, (outs[i] ?? "").trim().split("\n").pop() ?? ""])),
    );
    this.registerOutputs({
      volfiles: this.volfiles,
      records: this.records,
      mountPoint: this.mountPoint,
      siteUrl: this.siteUrl,
      nodeStatus: this.nodeStatus,
      runtimeRelease: this.runtimeRelease,
    });
  }

  /** DNS step by mode: nsupdate from this machine (rfc2136), the client's hosts file, or nothing. */
  private publishDns(
    name: string,
    c: ClusterConfig,
    records: DnsRecord[],
    clientHost: Host,
    servers: pulumi.Resource[],
    run: (resource: string, host: Host, steps: Steps, dependsOn: pulumi.Resource[]) => pulumi.Resource,
  ): pulumi.Resource | undefined {
    const expected = records.map((r) => r.value).sort().join(" ");
    if (c.dns.mode === "rfc2136" && c.dns.rfc2136) {
      const r = c.dns.rfc2136;
      const target = { server: r.server, port: r.port, zone: r.zone };
      // The key reaches nsupdate through the environment and a private temp file, never the script text.
      const keyFile = `keyfile=$(mktemp); trap 'rm -f "$keyfile"' EXIT
printf 'key "%s" {\\n  algorithm %s;\\n  secret "%s";\\n};\\n' ${scripts.sh(r.keyName)} ${scripts.sh(r.keyAlgorithm)} "$GLUSTER_HA_TSIG_SECRET" > "$keyfile"`;
      const nsupdate = (remove: boolean) => `nsupdate -k "$keyfile" <<'GLUSTER_HA_NSUPDATE_EOF'
${renderNsupdate(records, target, remove).trimEnd()}
GLUSTER_HA_NSUPDATE_EOF`;
      const verify = `for i in $(seq 1 50); do
  got=$(dig +short +norecurse @${r.server} -p ${r.port} ${records[0]!.name} A | sort | xargs)
  [ "$got" = ${scripts.sh(expected)} ] && break
  [ "$i" -lt 50 ] || { echo "dig ${records[0]!.name} at ${r.server}:${r.port} gave '$got', want '${expected}'" >&2; exit 1; }
  sleep 0.2
done
echo "dns ${records[0]!.name} -> $got"`;
      const up = [keyFile, nsupdate(false), verify].join("\n");
      return new command.local.Command(
        `${name}-dns`,
        {
          create: scripts.asBash(up),
          update: scripts.asBash(up),
          delete: scripts.asBash([keyFile, nsupdate(true)].join("\n")),
          environment: { GLUSTER_HA_TSIG_SECRET: pulumi.secret(r.keySecret) },
        },
        { parent: this, dependsOn: servers },
      );
    }
    if (c.dns.mode === "hosts") {
      const file = c.dns.hostsFile;
      const marker = hostsMarker(c.clusterName);
      // Not sed -i: /etc/hosts may be a bind mount (containers) that cannot be replaced, only rewritten.
      const strip = `if [ -f ${scripts.sh(file)} ]; then grep -vF ${scripts.sh(marker)} ${scripts.sh(file)} > ${scripts.sh(`${file}.gluster-ha`)} || true; cat ${scripts.sh(`${file}.gluster-ha`)} > ${scripts.sh(file)}; rm -f ${scripts.sh(`${file}.gluster-ha`)}; fi`;
      const up = [
        strip,
        `cat >> ${scripts.sh(file)} <<'GLUSTER_HA_HOSTS_EOF'\n${renderHostsLines(records, c.clusterName).trimEnd()}\nGLUSTER_HA_HOSTS_EOF`,
        `[ "$(grep -cF ${scripts.sh(marker)} ${scripts.sh(file)})" = ${records.length} ]`,
        `echo "hosts ${records[0]!.name} -> ${expected}"`,
      ].join("\n");
      return run(`${c.client.name}-dns-hosts`, clientHost, { create: up, update: up, delete: strip }, servers);
    }
    return undefined;
  }
}

function sshConnection(conn: ConnectionConfig): command.types.input.remote.ConnectionArgs {
  return {
    host: conn.host!,
    port: conn.port,
    user: conn.user,
    ...(conn.privateKey !== undefined ? { privateKey: pulumi.secret(conn.privateKey) } : {}),
    ...(conn.password !== undefined ? { password: pulumi.secret(conn.password) } : {}),
    ...(conn.hostKey !== undefined ? { hostKey: conn.hostKey } : {}),
  };
}

/** Polls the site through Apache on this host until it answers 200 (node is there; curl may not be). */
function waitForHttp(port: number, serverName: string): string {
  return `node -e '
const http = require("http");
const [port, host] = process.argv.slice(1);
const deadline = Date.now() + 20000;
function attempt() {
  http.get({ host: "127.0.0.1", port: Number(port), path: "/", headers: { Host: host } }, (res) => {
    res.resume();
    if (res.statusCode === 200) process.exit(0);
    retry("HTTP " + res.statusCode);
  }).on("error", (e) => retry(e.message));
}
attempt();
function retry(why) {
  if (Date.now() > deadline) { console.error("site on port " + port + " not answering: " + why); process.exit(1); }
  setTimeout(attempt, 200);
}' ${port} ${scripts.sh(serverName)}`;
}
