// gluster-ha: `import { Cluster } from "gluster-ha"` — the Pulumi component and its pure planners.
export { Cluster, planCluster, type ClusterPlan, type ClusterResourceOptions } from "./cluster";
export type * from "./args";
export { resolveClusterConfig } from "./validate";
export { renderServerVolfile, renderClientVolfile, type ServerVolfileInput, type ClientVolfileInput } from "./planners/volfiles";
export { planDnsRecords, renderNsupdate, renderHostsLines, type DnsRecord } from "./planners/dns";
export { renderApacheSite, type ApacheSiteInput, type ApacheSitePlan } from "./planners/apache";
export { renderSystemdUnit, type UnitInput } from "./planners/systemd";
export { bundleRuntime, type RuntimeBundle } from "./runtime-bundle";
