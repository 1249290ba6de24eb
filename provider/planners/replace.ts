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

/** Where the node's files live: the connection's host (or this machine) and the install prefix. */
export function hostIdentity(n: NodeIdentityInput): string {
  const where = n.connection.local ? "local" : `${n.connection.host}:${n.connection.port ?? 22}`;
  return `${where}:${n.installPrefix}`;
}

/** The node incarnation: a new address, host or brick directory is a new node that must be healed in. */
export function nodeIdentity(n: NodeIdentityInput): string {
  const key = JSON.stringify([n.name, n.address, hostIdentity(n), n.brickDir]);
  return `${n.name}-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
}
