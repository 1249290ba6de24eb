// The POSIX suite through the network graph, every part a real process: the glusterfs FUSE client
// (protocol/client) -> TCP -> glusterfsd on 127.0.0.2 (protocol/server -> posix-locks -> posix).
import { after, before } from "node:test";
import { mountVolfile, type Mounted } from "../helpers/mount";
import { posixSuite } from "../helpers/posix-suite";
import { clientVolfile, startBrickServer, stopAllServers } from "../helpers/servers";

let mounted: Mounted | undefined;

before(async () => {
  await startBrickServer({ host: "127.0.0.2", port: 24160, allow: { locks: "127.0.0.1" } });
  mounted = await mountVolfile(clientVolfile({ hosts: "127.0.0.2", port: 24160, timeout: 10 }));
});

after(async () => {
  await mounted?.unmount();
  await stopAllServers();
});

posixSuite("client -> server -> locks -> posix over TCP", () => mounted!.mountpoint);
