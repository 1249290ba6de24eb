// Volfile rendering: the seed's three files (node1-server.vol, node2-server.vol, client.vol), generated.
// The shape, names and comments follow the seed line by line so a golden test can compare bytes.

export const DEFAULT_LISTEN_PORT = 6996;

export interface ServerVolfileInput {
  /** This node (index 0 or 1 among the two) and the other one. */
  self: { name: string; index: number };
  peer: { name: string; index: number; address: string };
  brickDir: string;
  /** server: this node's AFR replicates to the peer (the seed); client: the client replicates. */
  replication: "server" | "client";
  transportTimeout: number;
  threadCount: number;
  cacheSize: string;
  authAllow: string[];
  /** Emitted as `option bind-address` unless undefined or 0.0.0.0 (the seed listens on all). */
  bindAddress?: string;
  /** Emitted (listen-port here, remote-port towards the peer) unless the default 6996. */
  listenPort?: number;
}

export interface ClientVolfileInput {
  /** remote-host: the cluster's FQDN (round-robin DNS) or a comma list of addresses. */
  remoteHost: string;
  /** replication "client": the nodes the client's own AFR talks to. */
  replication: "server" | "client";
  nodes: Array<{ name: string; address: string }>;
  transportTimeout: number;
  aggregateSize: number;
  pageSize: number;
  pageCount: number;
  listenPort?: number;
}

const capitalized = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function portLine(option: "listen-port" | "remote-port", port: number | undefined): string[] {
  return port !== undefined && port !== DEFAULT_LISTEN_PORT ? [`option ${option} ${port}`] : [];
}

function protocolClient(o: {
  volume: string;
  comment: string;
  remoteHost: string;
  hostComment: string;
  subvolume: string;
  subvolumeComment: string;
  timeout: number;
  timeoutComment: string;
  transportComment: string;
  port?: number;
}): string[] {
  return [
    o.comment,
    `volume ${o.volume}`,
    "type protocol/client",
    `option transport-type tcp/client${o.transportComment}`,
    `option remote-host ${o.remoteHost}${o.hostComment}`,
    ...portLine("remote-port", o.port),
    `option remote-subvolume ${o.subvolume}${o.subvolumeComment}`,
    `option transport-timeout ${o.timeout}${o.timeoutComment}`,
    "end-volume",
  ];
}

/** A storage node's volfile: brick, locks, (AFR to the peer,) io-threads, the server. */
export function renderServerVolfile(v: ServerVolfileInput): string {
  const peerVolume = `gfs-${v.peer.name}-ds`;
  const serverSide = v.replication === "server";
  const allow = v.authAllow.join(",");
  const lines = [
    `# Dataspace on ${capitalized(v.self.name)}`,
    "volume gfs-ds",
    "type storage/posix",
    `option directory ${v.brickDir}`,
    "end-volume",
    "# posix locks",
    "volume gfs-ds-locks",
    "type features/posix-locks",
    "subvolumes gfs-ds",
    "end-volume",
    ...(serverSide
      ? [
          ...protocolClient({
            volume: peerVolume,
            comment: `# Dataspace on ${capitalized(v.peer.name)}`,
            remoteHost: v.peer.address,
            hostComment: ` # IP address of server${v.peer.index + 1}`,
            subvolume: "gfs-ds-locks",
            subvolumeComment: "",
            timeout: v.transportTimeout,
            timeoutComment: " # value in seconds",
            transportComment: "",
            port: v.listenPort,
          }),
          "# automatic file replication translator for dataspace",
          "volume gfs-ds-afr",
          "type cluster/afr",
          `subvolumes gfs-ds-locks ${peerVolume}`,
          "end-volume",
        ]
      : []),
    "# the actual exported volume",
    "volume gfs",
    "type performance/io-threads",
    `option thread-count ${v.threadCount}`,
    `option cache-size ${v.cacheSize}`,
    `subvolumes ${serverSide ? "gfs-ds-afr" : "gfs-ds-locks"}`,
    "end-volume",
    "volume server",
    "type protocol/server",
    "option transport-type tcp/server",
    ...(v.bindAddress !== undefined && v.bindAddress !== "0.0.0.0" ? [`option bind-address ${v.bindAddress}`] : []),
    ...portLine("listen-port", v.listenPort),
    "subvolumes gfs",
    `option auth.ip.gfs-ds-locks.allow ${allow}`,
    `option auth.ip.gfs.allow ${allow}`,
    "end-volume",
  ];
  return `${lines.join("\n")}\n`;
}

/** The client's volfile: protocol/client to the cluster (or AFR over both nodes), write-behind, read-ahead. */
export function renderClientVolfile(v: ClientVolfileInput): string {
  const timeoutComment = " # Value in seconds";
  const top =
    v.replication === "server"
      ? protocolClient({
          volume: "cluster",
          comment: "# the exported volume to mount",
          remoteHost: v.remoteHost,
          hostComment: " # FQDN of server",
          subvolume: "gfs",
          subvolumeComment: " # Exported volmue",
          timeout: v.transportTimeout,
          timeoutComment,
          transportComment: " # For TCP/IP transport",
          port: v.listenPort,
        })
      : [
          ...v.nodes.flatMap((n) =>
            protocolClient({
              volume: `gfs-${n.name}`,
              comment: `# the volume exported by ${n.name}`,
              remoteHost: n.address,
              hostComment: "",
              subvolume: "gfs",
              subvolumeComment: "",
              timeout: v.transportTimeout,
              timeoutComment,
              transportComment: "",
              port: v.listenPort,
            }),
          ),
          "# automatic file replication on the client",
          "volume cluster",
          "type cluster/afr",
          `subvolumes ${v.nodes.map((n) => `gfs-${n.name}`).join(" ")}`,
          "end-volume",
        ];
  const lines = [
    ...top,
    "# performance block for cluster # optional!",
    "volume writeback",
    "type performance/write-behind",
    `option aggregate-size ${v.aggregateSize}`,
    "subvolumes cluster",
    "end-volume",
    "# performance block for cluster # optional!",
    "volume readahead",
    "type performance/read-ahead",
    `option page-size ${v.pageSize}`,
    `option page-count ${v.pageCount}`,
    "subvolumes writeback",
    "end-volume",
  ];
  return `${lines.join("\n")}\n`;
}
