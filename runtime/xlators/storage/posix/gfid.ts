import { randomUUID } from "node:crypto";
import { FopError } from "../../../core/errors";

/** The volume root's gfid, the same on every brick (as in GlusterFS). */
export const ROOT_GFID = "00000000-0000-0000-0000-000000000001";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function newGfid(): string {
  return randomUUID();
}

export function gfidToBytes(gfid: string): Buffer {
  return Buffer.from(gfid.replace(/-/g, ""), "hex");
}

export function gfidFromBytes(b: Uint8Array): string {
  const h = Buffer.from(b).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A gfid-req from xdata: a UUID string or 16 raw bytes (msgpack may deliver either); EINVAL otherwise. */
export function parseGfidReq(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string" && UUID_RE.test(v.toLowerCase())) return v.toLowerCase();
  if (v instanceof Uint8Array && v.length === 16) return gfidFromBytes(v);
  throw new FopError("EINVAL", "gfid-req is not a UUID");
}
