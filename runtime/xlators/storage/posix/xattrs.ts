import * as binding from "@napi-rs/xattr";
import { errnoName, FopError } from "../../../core/errors";

/**
 * Extended attributes through @napi-rs/xattr. The binding uses the l*xattr calls, so on a symlink
 * every operation applies to the link itself, never its target. Its errors only carry the OS errno
 * in the message ("... (os error 61)"), so they are converted here, once.
 */

/** Xattrs only the storage layer changes (through create-with-gfid-req and xattrop). */
export function isInternalXattr(name: string): boolean {
  return (
    name === GFID_XATTR ||
    name === "trusted.afr.dirty" ||
    name.startsWith("trusted.afr.") ||
    name.startsWith("trusted.glusterfs.") ||
    name.startsWith("trusted.gha.")
  );
}

export const GFID_XATTR = "trusted.gfid";
export const AFR_PREFIX = "trusted.afr.";

function convert(err: unknown): FopError {
  const msg = (err as { message?: unknown })?.message;
  const m = typeof msg === "string" ? /\(os error (\d+)\)/.exec(msg) : null;
  if (m) return new FopError(errnoName(Number(m[1])), String(msg));
  return FopError.from(err);
}

/** The value, or null when absent (the binding also answers null when the file is missing). */
export async function getXattr(path: string, name: string): Promise<Buffer | null> {
  try {
    return await binding.getAttribute(path, name);
  } catch (err) {
    throw convert(err);
  }
}

export async function setXattr(path: string, name: string, value: Buffer): Promise<void> {
  try {
    await binding.setAttribute(path, name, value);
  } catch (err) {
    throw convert(err);
  }
}

export async function listXattrs(path: string): Promise<string[]> {
  try {
    return await binding.listAttributes(path);
  } catch (err) {
    throw convert(err);
  }
}

export async function removeXattr(path: string, name: string): Promise<void> {
  try {
    await binding.removeAttribute(path, name);
  } catch (err) {
    throw convert(err);
  }
}

export function getXattrSync(path: string, name: string): Buffer | null {
  try {
    return binding.getAttributeSync(path, name);
  } catch (err) {
    throw convert(err);
  }
}

/** Whether `path` has the xattr (a filesystem without that namespace has none). */
export function hasXattr(path: string, name: string): boolean {
  try {
    return getXattrSync(path, name) !== null;
  } catch (err) {
    // (errno 95 is named ENOTSUP first by node, EOPNOTSUPP by others)
    const code = (err as FopError).code;
    if (code === "EOPNOTSUPP" || code === "ENOTSUP") return false;
    throw err;
  }
}

export function setXattrSync(path: string, name: string, value: Buffer): void {
  try {
    binding.setAttributeSync(path, name, value);
  } catch (err) {
    throw convert(err);
  }
}

export function listXattrsSync(path: string): string[] {
  try {
    return binding.listAttributesSync(path);
  } catch (err) {
    throw convert(err);
  }
}

export function removeXattrSync(path: string, name: string): void {
  try {
    binding.removeAttributeSync(path, name);
  } catch (err) {
    throw convert(err);
  }
}
