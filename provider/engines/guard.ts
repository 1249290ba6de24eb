// Refuses moving a deployed cluster from one engine to the other, at preview. A pulumi.Stash records
// the engine the cluster was first deployed with; on later runs its `output` keeps that value while
// `input` follows the program, so the comparison needs no host access and fails before any step runs.
// (Clusters deployed before the guard existed are caught on the hosts instead: engineMarkerScript.)
import * as pulumi from "@pulumi/pulumi";

export type EngineName = "bundled" | "glusterfs";

export function engineSwitchMessage(recorded: string, wanted: string): string {
  return (
    `engine: switching this cluster from engine "${recorded}" (as deployed) to "${wanted}" is refused: ` +
    `the data on the bricks would have to be migrated. Deploy a second Cluster (another name) with ` +
    `engine "${wanted}" and copy the data over (docs/engines.md, "Migrating between engines"), or set engine back to "${recorded}".`
  );
}

export interface EngineGuard {
  stash: pulumi.Stash;
  /** For the first steps' dependsOn: rejects (so no step runs) when the engine changed. */
  checked: pulumi.Output<pulumi.Resource[]>;
}

export function engineGuard(name: string, engine: EngineName, parent: pulumi.Resource): EngineGuard {
  const stash = new pulumi.Stash(`${name}-engine`, { input: engine }, { parent });
  const checked = stash.output.apply((recorded: unknown): pulumi.Resource[] => {
    if (typeof recorded === "string" && recorded !== engine) throw new pulumi.ResourceError(engineSwitchMessage(recorded, engine), parent);
    return [stash];
  });
  return { stash, checked };
}

/** The component's own dependsOn plus the guard: what the first steps wait for. */
export function guardedDependsOn(guard: EngineGuard, dependsOn: pulumi.ResourceOptions["dependsOn"]): pulumi.Output<pulumi.Resource[]> {
  return pulumi.all([guard.checked, pulumi.output(dependsOn ?? [])]).apply(([g, d]) => [...g, ...((Array.isArray(d) ? d : [d]) as pulumi.Resource[])]);
}
