// The wire protocol shared by protocol/client and protocol/server (see docs/protocol.md).
export * from "./codec";
export * from "./framing";
export * from "./auth";
export * from "./shared";
