// DNS planning: the round-robin A records of the cluster name (one per node, as in the seed), and the
// text that publishes them: an nsupdate script (RFC 2136) or a block of hosts-file lines.

export interface DnsRecord {
  /** Absolute name with the trailing dot, as in the seed's `dig` output. */
  name: string;
  type: "A";
  ttl: number;
  value: string;
}

export function planDnsRecords(clusterName: string, addresses: string[], ttl: number): DnsRecord[] {
  const name = `${clusterName.replace(/\.$/, "").toLowerCase()}.`;
  return [...new Set(addresses)].map((value) => ({ name, type: "A", ttl, value }));
}

export interface NsupdateTarget {
  server: string;
  port: number;
  zone: string;
}

/**
 * One atomic update: drop the name's A records, then add ours — re-running it converges to the same
 * answer (idempotent). With `remove`, only the delete.
 */
export function renderNsupdate(records: DnsRecord[], target: NsupdateTarget, remove = false): string {
  const names = [...new Set(records.map((r) => r.name))];
  const lines = [
    `server ${target.server} ${target.port}`,
    `zone ${target.zone.replace(/\.$/, "")}.`,
    ...names.map((n) => `update delete ${n} A`),
    ...(remove ? [] : records.map((r) => `update add ${r.name} ${r.ttl} ${r.type} ${r.value}`)),
    "send",
  ];
  return `${lines.join("\n")}\n`;
}

/** The marker that lets the hosts-file step find and replace (or remove) its own lines. */
export function hostsMarker(clusterName: string): string {
  return `# gluster-ha ${clusterName.replace(/\.$/, "").toLowerCase()}`;
}

export function renderHostsLines(records: DnsRecord[], clusterName: string): string {
  const marker = hostsMarker(clusterName);
  return records.map((r) => `${r.value}\t${r.name.replace(/\.$/, "")}\t${marker}`).join("\n") + "\n";
}
