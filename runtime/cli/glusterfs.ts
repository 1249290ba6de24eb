// glusterfs -f VOLFILE MOUNTPOINT: mounts the volfile's graph over FUSE (the seed's client command).
import "./thread-pool";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { Graph } from "../core/graph";
import type { LogHandle } from "../core/log";
import { createMountBridge, KERNEL_ATTR_TIMEOUT, KERNEL_INVALIDATED_TIMEOUT, type MountBridge, type MountBridgeOptions } from "../fuse/engine";
import type { FuseEngine } from "../fuse/options";
import { clearStaleMount, isMounted, lazyUnmount } from "../fuse/mounts";
import { DEFAULT_FUSE_OPTIONS } from "../fuse/options";
import { loadVolfile } from "../volfile";
import { volfileCheckMain } from "../volfile/check";
import { withMountStack } from "../xlators/performance/md-cache/mount-stack";
import {
  COMMON_FLAGS, daemonize, describeError, EXIT_OK, handleSignals, isDaemonChild,
  openProcessLog, asUsage, reloadVolfile, removePidfile, reportReady, UsageError,
  writePidfile, failStart, runCli,
} from "./_common";
import { changeLogLevel, countedTop, metricsFlags, OPS_FLAGS, OPS_USAGE, serveMetrics, statedump } from "./_ops";

// The client's memory budget is 100 MB + its caches (test/bench). V8 grows the young generation up
// to 3 x 16 MB under a stream of short-lived objects (every fop's request/reply): keeping it at its
// initial 1 MB semi-spaces saves ~20 MB of RSS for a little more frequent (cheap) scavenging. This
// flag takes effect at run time, unlike --max-semi-space-size, which would need a command-line flag.
setFlagsFromString("--semi-space-growth-factor=1");

/**
 * Like GlusterFS's mount, which stacks caching translators the user never wrote in a volfile, the
 * client puts performance/md-cache on top: with the kernel's attribute cache off (see
 * runtime/fuse/options.ts) every GETATTR and xattr probe would otherwise be a network round trip.
 */
const DEFAULT_MD_CACHE_TIMEOUT = 1;

const USAGE = `usage: glusterfs -f VOLFILE MOUNTPOINT [options]

  -f, --volfile FILE        the client volfile (its last volume is mounted)
  -N, --foreground          stay in the foreground (default: detach once the mount is up)
  -l, --log-file FILE       log here (default: stderr in the foreground, /var/log/glusterfs/<mountpoint>.log otherwise)
  -L, --log-level LEVEL     TRACE DEBUG INFO WARNING ERROR CRITICAL NONE (default INFO)
  -p, --pidfile FILE        write the process id here
      --volfile-check       check the volfile and exit (0 clean, 1 errors)
      --attribute-timeout S kernel attribute cache, seconds (default ${KERNEL_ATTR_TIMEOUT} with the kernel engine, whose
                            caches are dropped on lock grants, hard links and others' changes; ${DEFAULT_FUSE_OPTIONS.attrTimeout} with libfuse)
      --entry-timeout S     kernel name cache, seconds (default ${DEFAULT_FUSE_OPTIONS.entryTimeout})
      --invalidated-timeout S
                            kernel engine: names and attributes kept this long while the servers report
                            other clients' changes, which drop them (default ${KERNEL_INVALIDATED_TIMEOUT}, as md-cache; 0: the
                            two timeouts above always)
      --no-allow-other      only the mounting user may use the mount
      --acl                 keep POSIX ACLs (system.posix_acl_*: stored and replicated; the kernel checks mode
                            bits only). Without it they are EOPNOTSUPP, as on GlusterFS without -o acl
      --selinux             keep security.selinux labels (without it: EOPNOTSUPP, as on GlusterFS)
      --fuse-engine E       kernel: serve /dev/fuse directly from the event loop (default: 1 MiB requests,
                            READDIRPLUS, kernel caches dropped when others change files); libfuse: through
                            fuse-native and libfuse 2 (128 KiB requests, no READDIRPLUS)
      --md-cache-timeout S  metadata cache on top of the volfile's graph, seconds (default ${DEFAULT_MD_CACHE_TIMEOUT};
                            0: none). Attributes and security/ACL xattrs are cached by gfid, so unlike the
                            kernel's attribute cache it stays right across hard links; other clients' changes
                            show within S seconds — at once, and cached for a minute, while the servers
                            report them (their cache-invalidation). Skipped when the volfile has its own.
      --quick-read on|off   keep small files' content below md-cache and answer their read-only opens and
                            reads from it, while the servers report other clients' changes (default on;
                            skipped when the volfile has its own performance/quick-read)
${OPS_USAGE}
Signals: TERM/INT unmount and exit; HUP reloads the volfile and reopens the log; USR1 writes a statedump;
USR2 changes the log level (see \`gluster-ha log-level\`; alone it cycles info, debug, trace).
`;

const FLAGS = {
  ...COMMON_FLAGS,
  ...OPS_FLAGS,
  foreground: { type: "boolean", short: "N" },
  "no-daemon": { type: "boolean" },
  "attribute-timeout": { type: "string" },
  "entry-timeout": { type: "string" },
  "invalidated-timeout": { type: "string" },
  "no-allow-other": { type: "boolean" },
  acl: { type: "boolean" },
  selinux: { type: "boolean" },
  "md-cache-timeout": { type: "string" },
  "quick-read": { type: "string" },
  "fuse-engine": { type: "string" },
} as const;

function seconds(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag} ${v}: expected seconds (a number >= 0)`);
  return n;
}

function onOff(flag: string, v: string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (v === "on" || v === "off") return v === "on";
  throw new UsageError(`--${flag} ${v}: expected on or off`);
}

function fuseEngine(v: string | undefined): FuseEngine {
  if (v === undefined) return DEFAULT_FUSE_OPTIONS.engine;
  if (v === "kernel" || v === "libfuse") return v;
  throw new UsageError(`--fuse-engine ${v}: expected kernel or libfuse`);
}

/** How often the mount is checked for having been unmounted from outside (then the process exits). */
const MOUNT_WATCH_MS = 2000;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = asUsage(() => parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true }));
  if (values.help) {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (!values.volfile) throw new UsageError("missing -f VOLFILE");
  if (values["volfile-check"]) return volfileCheckMain(values.volfile);
  if (positionals.length !== 1) throw new UsageError("expected one MOUNTPOINT");
  const mountpoint = resolve(positionals[0]!);
  const foreground = values.foreground === true || values["no-daemon"] === true;
  const pidfile = values.pidfile ?? values["pid-file"];
  const engine = fuseEngine(values["fuse-engine"]);
  const fuseOptions = {
    mountpoint,
    attrTimeout: seconds("attribute-timeout", values["attribute-timeout"], engine === "kernel" ? KERNEL_ATTR_TIMEOUT : DEFAULT_FUSE_OPTIONS.attrTimeout),
    entryTimeout: seconds("entry-timeout", values["entry-timeout"], DEFAULT_FUSE_OPTIONS.entryTimeout),
    invalidatedTimeout: seconds("invalidated-timeout", values["invalidated-timeout"], engine === "kernel" ? KERNEL_INVALIDATED_TIMEOUT : 0),
    allowOther: values["no-allow-other"] !== true,
    xattrs: { acl: values.acl === true, selinux: values.selinux === true },
    engine,
  };
  const logFile = values["log-file"] ?? (foreground ? undefined : `/var/log/glusterfs/${mountpoint.slice(1).replace(/\//g, "-") || "root"}.log`);
  const logLevelFlag = values["log-level"];
  openProcessLog("glusterfs", "-", logLevelFlag); // validates --log-level before detaching
  const metricsAt = metricsFlags(values);
  const mdCacheTimeout = seconds("md-cache-timeout", values["md-cache-timeout"], DEFAULT_MD_CACHE_TIMEOUT);
  const quickRead = onOff("quick-read", values["quick-read"], true);

  if (!foreground && !isDaemonChild()) return daemonize("glusterfs");

  const logs = openProcessLog("glusterfs", logFile, logLevelFlag);
  return run(values.volfile, mountpoint, fuseOptions, pidfile, logs, metricsAt, mdCacheTimeout, quickRead);
}

async function run(
  volfile: string, mountpoint: string, fuseOptions: MountBridgeOptions, pidfile: string | undefined,
  logs: LogHandle, metricsAt?: Parameters<typeof serveMetrics>[0], mdCacheTimeout = DEFAULT_MD_CACHE_TIMEOUT, quickRead = true,
): Promise<number> {
  const mountStack = (v: ReturnType<typeof loadVolfile>) => withMountStack(v, { mdCacheTimeout, quickRead, xattrs: fuseOptions.xattrs });
  let graph: Graph;
  try {
    graph = Graph.build(mountStack(loadVolfile(volfile)), { log: logs.log });
  } catch (err) {
    return failStart("glusterfs", logs, describeError(err), { volfile });
  }
  const log = logs.log.child({ volume: graph.top.name });
  let bridge: MountBridge | undefined;
  try {
    const stale = await clearStaleMount(mountpoint, log);
    if (stale === "cleared") log.info({ mountpoint }, "stale mount removed");
    await graph.start();
    bridge = createMountBridge(countedTop(graph, log), fuseOptions, log);
    await bridge.mount();
    if (pidfile) writePidfile(pidfile);
  } catch (err) {
    await bridge?.unmount().catch(() => undefined);
    await graph.stop();
    return failStart("glusterfs", logs, describeError(err), { mountpoint, volfile });
  }
  log.info({ msgid: "FUSE_MOUNTED", mountpoint, volfile, options: bridge.options }, "mounted");
  const metricsServer = await serveMetrics(metricsAt, log);

  const mounted = bridge;
  let unmountedOutside = false;
  const stop = async () => {
    clearInterval(watch);
    metricsServer?.close();
    if (!unmountedOutside) await mounted.unmount().catch(async (err: unknown) => {
      log.warn({ err: (err as Error).message }, "unmount failed: detaching lazily");
      await lazyUnmount(mountpoint);
    });
    await graph.stop();
    removePidfile(pidfile);
  };
  // Someone ran `umount`: like GlusterFS, the client process then ends. (This timer also keeps the
  // process alive: fuse-native's own handles do not.)
  const watch = setInterval(() => {
    if (isMounted(mountpoint)) return;
    unmountedOutside = true;
    log.info({ msgid: "FUSE_UNMOUNTED_OUTSIDE", mountpoint }, "unmounted from outside: exiting");
    process.kill(process.pid, "SIGTERM");
  }, MOUNT_WATCH_MS);
  handleSignals({
    stop,
    hup: () => {
      logs.reopen();
      if (logs.file !== "-") log.info({ msgid: "LOG_REOPENED", file: logs.file }, "log reopened");
      reloadVolfile(graph, volfile, log, mountStack);
    },
    usr1: () => statedump(graph, log, { fuse: mounted.dump() }),
    usr2: () => changeLogLevel(logs.log, log),
  }, logs, log);
  reportReady();
  return new Promise<number>(() => undefined); // runs until a signal ends the process
}

runCli("glusterfs", main, USAGE);
