// Node replacement: what makes a storage node "another node" (its identity) and which host it lives on.
// A changed identity makes Pulumi replace the node's bring-up and join steps (create the new one, heal
// it fully from the survivor, switch the survivor and the client, and only then delete the old one).
import { createHash } from "node:crypto";
import type { ConnectionConfig } from "../args";

export interface NodeIdentityInput {
  name: string;
  address: string;
  brickDir: string;
  installPrefix: string;
  connection: ConnectionConfig;
}

/**
 * The machine a connection reaches: "local", or the SSH host and port, and the user unless it is root
 * (the default: so the identities of nodes deployed before the user counted stay the same). Another
 * user may be another machine (SSH gateways route by user name): counted as another host.
 */
export function connectionTarget(c: Pick<ConnectionConfig, "local" | "host" | "port" | "user">): string {
  if (c.local) return "local";
  const user = c.user === undefined || c.user === "root" ? "" : `${c.user}@`;
  return `${user}${c.host}:${c.port ?? 22}`;
}

/** Where the node's files live: the connection's host (or this machine) and the install prefix. */
export function hostIdentity(n: NodeIdentityInput): string {
  return `${connectionTarget(n.connection)}:${n.installPrefix}`;
}

/**
 * The node incarnation: a new address, host (SSH host, port or user) or brick directory is a new node
 * that must be healed in.
 */
export function nodeIdentity(n: NodeIdentityInput): string {
  const key = JSON.stringify([n.name, n.address, hostIdentity(n), n.brickDir]);
  return `${n.name}-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
}
