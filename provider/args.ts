// Generated from schema/cluster.json by provider/codegen/gen-args.ts. Do not edit by hand:
// change the schema and run `node --import tsx provider/codegen/gen-args.ts`.
import type * as pulumi from "@pulumi/pulumi";

/** Inputs of the gluster-ha Cluster component: two storage nodes replicating each other, one FUSE client, round-robin DNS and an optional Apache site on the mount. */
export interface ClusterArgs {
  /** bundled: the gluster-ha runtime (two nodes); glusterfs: the distribution's GlusterFS packages (glusterd, a replica volume, mount -t glusterfs). A deployed cluster cannot switch engines (docs/engines.md). Defaults to "bundled". */
  engine?: "bundled" | "glusterfs";
  /** The storage nodes, node 1 first: exactly two with engine bundled; two or more with engine glusterfs (replica sets of 2 or 3 bricks). */
  nodes: NodeArgs[];
  /** The host that mounts the volume (and serves the Apache site). */
  client: ClientArgs;
  /** The FQDN with one A record per node (round-robin DNS, as in the seed). */
  clusterName: string;
  /** How the cluster name's A records are published. Defaults to {"mode":"none"}. */
  dns?: DnsArgs;
  /** false, or an Apache site on the client serving a directory of the mount. Defaults to false. */
  apache?: false | ApacheArgs;
  /** server: the seed's server-side AFR (each node replicates to the other); client: the client's volfile holds the AFR over both nodes. Defaults to "server". */
  replication?: "server" | "client";
  /** Translator options, with the seed's values as defaults. Defaults to {}. */
  options?: OptionsArgs;
  /** Addresses allowed to attach to the exported volumes (globs and CIDR allowed). Defaults to the nodes', the client's addresses and 127.0.0.1. */
  authAllow?: string[];
  /** TCP port the servers listen on. Defaults to 6996. */
  listenPort?: number;
  /** systemd: units written and enabled; process: `gluster-ha service` supervisors with pidfiles (hosts without systemd). Defaults to "systemd". */
  serviceManager?: "systemd" | "process";
  /** Keep the brick directories on destroy. Defaults to true. */
  retainData?: boolean;
  /** engine glusterfs: the GlusterFS volume's name (the bundled engine's volume is always gfs). Defaults to "gfs". */
  volumeName?: string;
  /** engine glusterfs, nodes in sets of three: the third brick of each set holds metadata only (replica 3 arbiter 1). Defaults to false. */
  arbiter?: boolean;
}

/** How to reach a host: { local: true } runs the steps on this machine, otherwise SSH. */
export interface ConnectionArgs {
  /** Run the steps on the machine running Pulumi. Defaults to false. */
  local?: boolean;
  /** SSH host name or address. */
  host?: string;
  /** SSH port. Defaults to 22. */
  port?: number;
  /** SSH user (needs root rights: mounts, packages). Defaults to "root". */
  user?: string;
  /** SSH private key (PEM). */
  privateKey?: pulumi.Input<string>;
  /** SSH password. */
  password?: pulumi.Input<string>;
  /** The host's public SSH key as `TYPE BASE64` (a known_hosts line without the host name, e.g. from `ssh-keyscan`): the connection fails unless the host presents it. Unset, the host key is not checked. */
  hostKey?: string;
}

export interface NodeArgs {
  /** Short name (node1): names the volumes, services and resources. */
  name: string;
  /** Address the other node and the client use. */
  address: string;
  /** Address the server listens on; 0.0.0.0 for all. Defaults to the node's address. */
  bindAddress?: string;
  /** How to reach a host: { local: true } runs the steps on this machine, otherwise SSH. */
  connection: ConnectionArgs;
  /** The exported directory (the brick). Defaults to "/ha". */
  brickDir?: string;
  /** Where the runtime, volfiles, pidfiles and logs go. Defaults to "/opt/gluster-ha". */
  installPrefix?: string;
}

export interface ClientArgs {
  /** Short name of the client host. Defaults to "client". */
  name?: string;
  /** The client's address (allowed by the servers' auth rules). */
  address: string;
  /** How to reach a host: { local: true } runs the steps on this machine, otherwise SSH. */
  connection: ConnectionArgs;
  /** Where the volume is mounted. Defaults to "/ha". */
  mountPoint?: string;
  /** Where the runtime, volfile, pidfile and log go. Defaults to "/opt/gluster-ha". */
  installPrefix?: string;
  /** remote-host of the client volfile: a name or a comma list of addresses. Defaults to the cluster name (resolved by the system resolver). */
  remoteHost?: string;
}

export interface DnsArgs {
  /** rfc2136: dynamic update with a TSIG key; hosts: entries in the client's hosts file; none: records only exported as outputs. */
  mode: "rfc2136" | "hosts" | "none";
  /** TTL of the A records. Defaults to 3600. */
  ttl?: number;
  /** Dynamic update (RFC 2136) with a TSIG key. */
  rfc2136?: Rfc2136Args;
  /** The client's hosts file (mode hosts). Defaults to "/etc/hosts". */
  hostsFile?: string;
}

export interface ApacheArgs {
  /** Port of the virtual host. Defaults to 80. */
  port?: number;
  /** ServerName of the virtual host. */
  serverName: string;
  /** Document root, relative to the client's mount point (it must live on the volume). Defaults to "www". */
  documentRoot?: string;
  /** index.html written to the document root when none is there yet. Defaults to "<html><body><h1>gluster-ha</h1><p>Served from the replicated volume.</p></body></html>\n". */
  defaultPage?: string;
  /** debian: sites-available + a2ensite-style link; rhel: conf.d. Defaults to "debian". */
  layout?: "debian" | "rhel";
  /** Apache's configuration directory. Defaults to /etc/apache2 (debian) or /etc/httpd (rhel). */
  configDir?: string;
  /** The apachectl command (with any environment), e.g. `env APACHE_CONFDIR=/srv/apache apache2ctl`. Defaults to "apachectl". */
  control?: string;
}

export interface OptionsArgs {
  /** transport-timeout between the servers, seconds. Defaults to 5. */
  serverTransportTimeout?: number;
  /** transport-timeout from the client, seconds. Defaults to 10. */
  clientTransportTimeout?: number;
  /** io-threads thread-count. Defaults to 8. */
  ioThreadCount?: number;
  /** io-threads cache-size (units KB/MB/GB/TB). Defaults to "64MB". */
  ioCacheSize?: string;
  /** write-behind aggregate-size, bytes. Defaults to 131072. */
  writeBehindAggregateSize?: number;
  /** read-ahead page-size, bytes. Defaults to 65536. */
  readAheadPageSize?: number;
  /** read-ahead page-count. Defaults to 16. */
  readAheadPageCount?: number;
}

/** Dynamic update (RFC 2136) with a TSIG key. */
export interface Rfc2136Args {
  /** Address of the DNS server accepting updates. */
  server: string;
  /** Its port. Defaults to 53. */
  port?: number;
  /** The zone holding the cluster name. */
  zone: string;
  /** TSIG key name. */
  keyName: string;
  /** TSIG algorithm. Defaults to "hmac-sha256". */
  keyAlgorithm?: "hmac-sha256" | "hmac-sha512" | "hmac-sha1" | "hmac-md5";
  /** TSIG secret (base64). */
  keySecret: pulumi.Input<string>;
}

/** Inputs of the gluster-ha Cluster component: two storage nodes replicating each other, one FUSE client, round-robin DNS and an optional Apache site on the mount. */
export interface ClusterConfig {
  /** bundled: the gluster-ha runtime (two nodes); glusterfs: the distribution's GlusterFS packages (glusterd, a replica volume, mount -t glusterfs). A deployed cluster cannot switch engines (docs/engines.md). Defaults to "bundled". */
  engine: "bundled" | "glusterfs";
  /** The storage nodes, node 1 first: exactly two with engine bundled; two or more with engine glusterfs (replica sets of 2 or 3 bricks). */
  nodes: NodeConfig[];
  /** The host that mounts the volume (and serves the Apache site). */
  client: ClientConfig;
  /** The FQDN with one A record per node (round-robin DNS, as in the seed). */
  clusterName: string;
  /** How the cluster name's A records are published. Defaults to {"mode":"none"}. */
  dns: DnsConfig;
  /** false, or an Apache site on the client serving a directory of the mount. Defaults to false. */
  apache: false | ApacheConfig;
  /** server: the seed's server-side AFR (each node replicates to the other); client: the client's volfile holds the AFR over both nodes. Defaults to "server". */
  replication: "server" | "client";
  /** Translator options, with the seed's values as defaults. Defaults to {}. */
  options: OptionsConfig;
  /** Addresses allowed to attach to the exported volumes (globs and CIDR allowed). Defaults to the nodes', the client's addresses and 127.0.0.1. */
  authAllow: string[];
  /** TCP port the servers listen on. Defaults to 6996. */
  listenPort: number;
  /** systemd: units written and enabled; process: `gluster-ha service` supervisors with pidfiles (hosts without systemd). Defaults to "systemd". */
  serviceManager: "systemd" | "process";
  /** Keep the brick directories on destroy. Defaults to true. */
  retainData: boolean;
  /** engine glusterfs: the GlusterFS volume's name (the bundled engine's volume is always gfs). Defaults to "gfs". */
  volumeName: string;
  /** engine glusterfs, nodes in sets of three: the third brick of each set holds metadata only (replica 3 arbiter 1). Defaults to false. */
  arbiter: boolean;
}

/** How to reach a host: { local: true } runs the steps on this machine, otherwise SSH. */
export interface ConnectionConfig {
  /** Run the steps on the machine running Pulumi. Defaults to false. */
  local: boolean;
  /** SSH host name or address. */
  host?: string;
  /** SSH port. Defaults to 22. */
  port: number;
  /** SSH user (needs root rights: mounts, packages). Defaults to "root". */
  user: string;
  /** SSH private key (PEM). */
  privateKey?: pulumi.Input<string>;
  /** SSH password. */
  password?: pulumi.Input<string>;
  /** The host's public SSH key as `TYPE BASE64` (a known_hosts line without the host name, e.g. from `ssh-keyscan`): the connection fails unless the host presents it. Unset, the host key is not checked. */
  hostKey?: string;
}

export interface NodeConfig {
  /** Short name (node1): names the volumes, services and resources. */
  name: string;
  /** Address the other node and the client use. */
  address: string;
  /** Address the server listens on; 0.0.0.0 for all. Defaults to the node's address. */
  bindAddress: string;
  /** How to reach a host: { local: true } runs the steps on this machine, otherwise SSH. */
  connection: ConnectionConfig;
  /** The exported directory (the brick). Defaults to "/ha". */
  brickDir: string;
  /** Where the runtime, volfiles, pidfiles and logs go. Defaults to "/opt/gluster-ha". */
  installPrefix: string;
}

export interface ClientConfig {
  /** Short name of the client host. Defaults to "client". */
  name: string;
  /** The client's address (allowed by the servers' auth rules). */
  address: string;
  /** How to reach a host: { local: true } runs the steps on this machine, otherwise SSH. */
  connection: ConnectionConfig;
  /** Where the volume is mounted. Defaults to "/ha". */
  mountPoint: string;
  /** Where the runtime, volfile, pidfile and log go. Defaults to "/opt/gluster-ha". */
  installPrefix: string;
  /** remote-host of the client volfile: a name or a comma list of addresses. Defaults to the cluster name (resolved by the system resolver). */
  remoteHost: string;
}

export interface DnsConfig {
  /** rfc2136: dynamic update with a TSIG key; hosts: entries in the client's hosts file; none: records only exported as outputs. */
  mode: "rfc2136" | "hosts" | "none";
  /** TTL of the A records. Defaults to 3600. */
  ttl: number;
  /** Dynamic update (RFC 2136) with a TSIG key. */
  rfc2136?: Rfc2136Config;
  /** The client's hosts file (mode hosts). Defaults to "/etc/hosts". */
  hostsFile: string;
}

export interface ApacheConfig {
  /** Port of the virtual host. Defaults to 80. */
  port: number;
  /** ServerName of the virtual host. */
  serverName: string;
  /** Document root, relative to the client's mount point (it must live on the volume). Defaults to "www". */
  documentRoot: string;
  /** index.html written to the document root when none is there yet. Defaults to "<html><body><h1>gluster-ha</h1><p>Served from the replicated volume.</p></body></html>\n". */
  defaultPage: string;
  /** debian: sites-available + a2ensite-style link; rhel: conf.d. Defaults to "debian". */
  layout: "debian" | "rhel";
  /** Apache's configuration directory. Defaults to /etc/apache2 (debian) or /etc/httpd (rhel). */
  configDir: string;
  /** The apachectl command (with any environment), e.g. `env APACHE_CONFDIR=/srv/apache apache2ctl`. Defaults to "apachectl". */
  control: string;
}

export interface OptionsConfig {
  /** transport-timeout between the servers, seconds. Defaults to 5. */
  serverTransportTimeout: number;
  /** transport-timeout from the client, seconds. Defaults to 10. */
  clientTransportTimeout: number;
  /** io-threads thread-count. Defaults to 8. */
  ioThreadCount: number;
  /** io-threads cache-size (units KB/MB/GB/TB). Defaults to "64MB". */
  ioCacheSize: string;
  /** write-behind aggregate-size, bytes. Defaults to 131072. */
  writeBehindAggregateSize: number;
  /** read-ahead page-size, bytes. Defaults to 65536. */
  readAheadPageSize: number;
  /** read-ahead page-count. Defaults to 16. */
  readAheadPageCount: number;
}

/** Dynamic update (RFC 2136) with a TSIG key. */
export interface Rfc2136Config {
  /** Address of the DNS server accepting updates. */
  server: string;
  /** Its port. Defaults to 53. */
  port: number;
  /** The zone holding the cluster name. */
  zone: string;
  /** TSIG key name. */
  keyName: string;
  /** TSIG algorithm. Defaults to "hmac-sha256". */
  keyAlgorithm: "hmac-sha256" | "hmac-sha512" | "hmac-sha1" | "hmac-md5";
  /** TSIG secret (base64). */
  keySecret: pulumi.Input<string>;
}
