import type { Logger } from "pino";
import type { Xlator } from "../core/xlator";
import { FuseBridge, type BridgeStats } from "./bridge";
import { KernelFuseBridge } from "./kernel/bridge";
import { DEFAULT_FUSE_OPTIONS, type FuseMountOptions } from "./options";

/** What the glusterfs CLI needs of a mount, whichever engine serves it. */
export interface MountBridge {
  readonly options: FuseMountOptions;
  mount(): Promise<void>;
  unmount(): Promise<void>;
  readonly mounted: boolean;
  dump(): Record<string, unknown>;
  statsSnapshot(): BridgeStats;
}

export type MountBridgeOptions = Partial<FuseMountOptions> & { mountpoint: string };

/** The kernel engine takes requests of up to 1 MiB (libfuse 2's ceiling is 128 KiB). */
export const KERNEL_MAX_REQUEST = 1 << 20;

/**
 * GlusterFS's 1 s: the kernel engine can cache file attributes because it drops them when it matters
 * (a lock granted, a hard link or unlink through another name, another client's change reported by
 * the servers); libfuse 2's path-based API could not (options.ts).
 */
export const KERNEL_ATTR_TIMEOUT = 1;
/** md-cache's invalidation-timeout: while the servers report changes, the kernel keeps what it has as long. */
export const KERNEL_INVALIDATED_TIMEOUT = 60;

export function createMountBridge(top: Xlator, options: MountBridgeOptions, log: Logger): MountBridge {
  const engine = options.engine ?? DEFAULT_FUSE_OPTIONS.engine;
  if (engine === "libfuse") return new FuseBridge(top, options, log);
  return new KernelFuseBridge(top, { maxWrite: KERNEL_MAX_REQUEST, maxRead: KERNEL_MAX_REQUEST, attrTimeout: KERNEL_ATTR_TIMEOUT, invalidatedTimeout: KERNEL_INVALIDATED_TIMEOUT, ...options }, log);
}
