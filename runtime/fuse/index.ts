export { FuseBridge, toFuseStat, type BridgeStats } from "./bridge";
export { KernelFuseBridge } from "./kernel/bridge";
export { createMountBridge, type MountBridge, type MountBridgeOptions } from "./engine";
export { DEFAULT_FUSE_OPTIONS, FUSE_SUBTYPE, type FuseMountOptions } from "./options";
export { isInternalXattr } from "./xattrs";
export { clearStaleMount, isMounted, mountEntry } from "./mounts";
