// The glusterfs engine's planner: what the real GlusterFS CLI must be told for a given cluster config
// (replica layout, bricks, `gluster volume create/start/set`, the client's mount). Pure and
// table-tested; provider/engines/glusterfs-scripts.ts turns the plan into idempotent shell steps.
import { ConfigError } from "../../runtime/core/errors";

export interface GlusterfsNodeInput {
  name: string;
  /** The address the other nodes and the client use: the brick's host part. */
  address: string;
  brickDir: string;
}

/** The component options that have a GlusterFS equivalent (seed names, seed units). */
export interface GlusterfsOptionsInput {
  serverTransportTimeout: number;
  ioThreadCount: number;
  ioCacheSize: string;
  writeBehindAggregateSize: number;
  readAheadPageCount: number;
}

export interface GlusterfsVolumeInput {
  volumeName: string;
  nodes: GlusterfsNodeInput[];
  /** With replica sets of three: the third brick of each set holds metadata only. */
  arbiter: boolean;
  options: GlusterfsOptionsInput;
  authAllow: string[];
  /** The client volfile's remote-host: a name (the cluster name) or a comma list of addresses. */
  remoteHost: string;
  mountPoint: string;
}

export interface ReplicaLayout {
  /** Bricks per replica set. */
  replica: 2 | 3;
  /** `arbiter 1`: the last brick of each set stores metadata only. */
  arbiter: boolean;
  /** Replica sets the volume distributes over (1 = a plain replicated volume). */
  sets: number;
}

export interface GlusterfsPlan {
  volumeName: string;
  layout: ReplicaLayout;
  /** `address:brickDir`, in node order (GlusterFS groups consecutive bricks into replica sets). */
  bricks: string[];
  /** Addresses node 1 probes to form the trusted pool. */
  peers: string[];
  /** argv after `gluster --mode=script`. */
  create: string[];
  start: string[];
  stop: string[];
  delete: string[];
  /** `gluster volume set VOLUME KEY VALUE`, in this order. */
  options: Array<[key: string, value: string]>;
  mount: GlusterfsMountPlan;
}

export interface GlusterfsMountPlan {
  /** `server:/volume`. */
  source: string;
  /** Volfile servers tried when the first does not answer (the DNS records' addresses). */
  backupServers: string[];
  mountPoint: string;
  /** argv of the mount command. */
  argv: string[];
}

/** GlusterFS's network.ping-timeout is whole seconds, at most 1013. */
export const MAX_PING_TIMEOUT = 1013;
/** The read-ahead translator's page-count range in GlusterFS. */
export const MAX_READ_AHEAD_PAGE_COUNT = 16;

/**
 * How N nodes become replica sets: 2 -> replica 2; a multiple of 3 -> replica 3 (arbiter 1 when asked);
 * another even count -> replica 2 sets. Anything else cannot be laid out without a brick left over.
 */
export function replicaLayout(nodeCount: number, arbiter: boolean): ReplicaLayout {
  if (!Number.isInteger(nodeCount) || nodeCount < 2) {
    throw new ConfigError(`nodes: engine glusterfs needs at least 2 nodes, got ${nodeCount}`, { option: "nodes" });
  }
  if (nodeCount !== 2 && nodeCount % 3 === 0) return { replica: 3, arbiter, sets: nodeCount / 3 };
  if (arbiter) {
    throw new ConfigError(`arbiter: needs the nodes in sets of three (3, 6, 9 ...), got ${nodeCount} nodes`, { option: "arbiter" });
  }
  if (nodeCount % 2 === 0) return { replica: 2, arbiter: false, sets: nodeCount / 2 };
  throw new ConfigError(
    `nodes: engine glusterfs lays nodes out in replica sets of 2 or 3 bricks, and ${nodeCount} nodes leave one over (use 2, 3, 4, 6 ...)`,
    { option: "nodes" },
  );
}

/** The component's seed options as `gluster volume set` pairs (the ones with no equivalent are documented in docs/engines.md). */
export function volumeOptions(o: GlusterfsOptionsInput, authAllow: string[]): Array<[string, string]> {
  const pingTimeout = Math.ceil(o.serverTransportTimeout);
  if (pingTimeout > MAX_PING_TIMEOUT) {
    throw new ConfigError(`options.serverTransportTimeout: engine glusterfs allows at most ${MAX_PING_TIMEOUT} s (network.ping-timeout), got ${o.serverTransportTimeout}`, { option: "options.serverTransportTimeout" });
  }
  if (o.readAheadPageCount > MAX_READ_AHEAD_PAGE_COUNT) {
    throw new ConfigError(`options.readAheadPageCount: engine glusterfs allows at most ${MAX_READ_AHEAD_PAGE_COUNT} (performance.read-ahead-page-count), got ${o.readAheadPageCount}`, { option: "options.readAheadPageCount" });
  }
  return [
    ["network.ping-timeout", String(pingTimeout)],
    ["performance.io-thread-count", String(o.ioThreadCount)],
    ["performance.cache-size", o.ioCacheSize],
    ["performance.aggregate-size", String(o.writeBehindAggregateSize)],
    ["performance.read-ahead-page-count", String(o.readAheadPageCount)],
    ["auth.allow", authAllow.join(",")],
  ];
}

/**
 * The mount: the first remote host serves the volfile; the backups are the rest of the list, or, when
 * the remote host is a name (the cluster name), every node address — the records behind that name.
 */
export function planMount(remoteHost: string, volumeName: string, mountPoint: string, nodeAddresses: string[]): GlusterfsMountPlan {
  const hosts = remoteHost.split(",").map((h) => h.trim()).filter(Boolean);
  const primary = hosts[0];
  if (!primary) throw new ConfigError("client.remoteHost: must name at least one host", { option: "client.remoteHost" });
  const backupServers = hosts.length > 1 ? hosts.slice(1) : nodeAddresses.filter((a) => a !== primary);
  const source = `${primary}:/${volumeName}`;
  const argv = ["mount", "-t", "glusterfs", ...(backupServers.length ? ["-o", `backup-volfile-servers=${backupServers.join(":")}`] : []), source, mountPoint];
  return { source, backupServers, mountPoint, argv };
}

export function planGlusterfsVolume(input: GlusterfsVolumeInput): GlusterfsPlan {
  const layout = replicaLayout(input.nodes.length, input.arbiter);
  const v = input.volumeName;
  const bricks = input.nodes.map((n) => `${n.address}:${n.brickDir}`);
  const create = [
    "volume", "create", v,
    "replica", String(layout.replica),
    ...(layout.arbiter ? ["arbiter", "1"] : []),
    "transport", "tcp",
    ...bricks,
    // Bricks on the root file system, or two of a set on one host (tests), need force.
    "force",
  ];
  return {
    volumeName: v,
    layout,
    bricks,
    peers: [...new Set(input.nodes.slice(1).map((n) => n.address))],
    create,
    start: ["volume", "start", v],
    stop: ["volume", "stop", v, "force"],
    delete: ["volume", "delete", v],
    options: volumeOptions(input.options, input.authAllow),
    mount: planMount(input.remoteHost, v, input.mountPoint, input.nodes.map((n) => n.address)),
  };
}
