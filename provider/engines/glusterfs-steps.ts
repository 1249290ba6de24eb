// The glusterfs engine's resources inside the Cluster component, in the seed's order: every node gets
// the packages and glusterd (one node after the other), node 1 forms the trusted pool and creates the
// volume, the client mounts it after DNS. Apache and DNS stay the component's own, as for the bundled engine.
import type * as command from "@pulumi/command";
import type * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig, ConnectionConfig } from "../args";
import type { HostPaths } from "../scripts";
import type { GlusterfsPlan } from "./glusterfs";
import * as gs from "./glusterfs-scripts";

export interface StepHost {
  key: string;
  connection: ConnectionConfig;
  paths: HostPaths;
}

export type StepCommand = command.local.Command | command.remote.Command;

/** The component's step runner: one @pulumi/command resource per host step. */
export type RunStep = (
  resource: string,
  host: StepHost,
  steps: { create: string; update?: string; delete: string },
  deps: pulumi.Resource[],
  extraDeps?: pulumi.ResourceOptions["dependsOn"],
) => StepCommand;

export interface GlusterfsSteps {
  /** One per node: packages and glusterd; their last stdout line is the node's status. */
  servers: StepCommand[];
  /** The started volume (node 1). */
  volume: StepCommand;
  /** The client's mount, after the volume and whatever else must precede it (DNS). */
  mount: (deps: pulumi.Resource[]) => StepCommand;
}

export function glusterfsSteps(
  c: ClusterConfig,
  plan: GlusterfsPlan,
  nodeHosts: StepHost[],
  clientHost: StepHost,
  run: RunStep,
  gate: pulumi.ResourceOptions["dependsOn"],
): GlusterfsSteps {
  const manager = c.serviceManager;
  // One node after the other: nodes sharing a host (tests) share its one glusterd.
  const servers: StepCommand[] = [];
  c.nodes.forEach((n, i) => {
    const host = nodeHosts[i]!;
    const up = gs.nodeUpScript(manager, host.paths, n.name, n.address, n.brickDir);
    servers.push(run(`${n.name}-glusterd`, host, { create: up, update: up, delete: gs.nodeDownScript(manager, host.paths, n.brickDir, c.retainData) }, [...servers], gate));
  });
  const first = nodeHosts[0]!;
  const probe = gs.peerProbeScript(plan.peers);
  const pool = run(`${first.key}-pool`, first, { create: probe, update: probe, delete: gs.peerDetachScript(plan.peers) }, servers);
  const volumeUp = gs.volumeUpScript(plan);
  const volume = run(`${first.key}-volume`, first, { create: volumeUp, update: volumeUp, delete: gs.volumeDownScript(plan) }, [pool]);
  const mountUp = gs.clientUpScript(plan.mount, clientHost.paths, clientHost.key, manager);
  const mount = (deps: pulumi.Resource[]): StepCommand =>
    run(`${clientHost.key}-mount`, clientHost, { create: mountUp, update: mountUp, delete: gs.clientDownScript(plan.mount.mountPoint, clientHost.paths) }, [volume, ...deps], gate);
  return { servers, volume, mount };
}
