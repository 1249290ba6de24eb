// glusterfsd -f VOLFILE: runs a server graph (bricks, locks, replication, protocol/server listening).
import "./thread-pool";
import { parseArgs } from "node:util";
import { Graph } from "../core/graph";
import type { LogHandle } from "../core/log";
import { volfileCheckMain } from "../volfile/check";
import {
  COMMON_FLAGS, daemonize, describeError, EXIT_OK, handleSignals, isDaemonChild,
  openProcessLog, asUsage, reloadVolfile, removePidfile, reportReady, UsageError,
  writePidfile, failStart, runCli,
} from "./_common";
import { changeLogLevel, metricsFlags, OPS_FLAGS, OPS_USAGE, serveMetrics, statedump, type MetricsFlags } from "./_ops";

const USAGE = `usage: glusterfsd -f VOLFILE [options]

  -f, --volfile FILE     the server volfile
  -p, --pidfile FILE     write the process id here (refused while another live process holds it)
  -l, --log-file FILE    log here (default: stderr; /var/log/glusterfsd.log with --daemon)
  -L, --log-level LEVEL  TRACE DEBUG INFO WARNING ERROR CRITICAL NONE (default INFO)
      --daemon           detach once the graph is up (default: stay in the foreground)
      --volfile-check    check the volfile and exit (0 clean, 1 errors)
${OPS_USAGE}
Signals: TERM/INT stop cleanly; HUP re-reads the volfile (live options applied, the rest logged as
needing a restart) and reopens the log; USR1 writes a statedump to /tmp/glusterdump.<pid>.<time>;
USR2 changes the log level (see \`gluster-ha log-level\`; alone it cycles info, debug, trace).
`;

const FLAGS = { ...COMMON_FLAGS, ...OPS_FLAGS, daemon: { type: "boolean", short: "d" }, foreground: { type: "boolean", short: "N" } } as const;

async function main(argv: string[]): Promise<number> {
  const { values } = asUsage(() => parseArgs({ args: argv, options: FLAGS, allowPositionals: false, strict: true }));
  if (values.help) {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (!values.volfile) throw new UsageError("missing -f VOLFILE");
  if (values["volfile-check"]) return volfileCheckMain(values.volfile);
  const daemon = values.daemon === true && values.foreground !== true;
  const pidfile = values.pidfile ?? values["pid-file"];
  const logFile = values["log-file"] ?? (daemon ? "/var/log/glusterfsd.log" : undefined);
  openProcessLog("glusterfsd", "-", values["log-level"]); // validates --log-level before detaching

  metricsFlags(values); // validates --metrics-port before detaching
  if (daemon && !isDaemonChild()) return daemonize("glusterfsd");
  return run(values.volfile, pidfile, openProcessLog("glusterfsd", logFile, values["log-level"]), values);
}

async function run(volfile: string, pidfile: string | undefined, logs: LogHandle, flags: Parameters<typeof metricsFlags>[0]): Promise<number> {
  let graph: Graph;
  let metricsAt: MetricsFlags | undefined;
  try {
    graph = Graph.fromFile(volfile, { log: logs.log });
    metricsAt = metricsFlags(flags, graph);
    if (pidfile) writePidfile(pidfile);
  } catch (err) {
    return failStart("glusterfsd", logs, describeError(err), { volfile });
  }
  const log = logs.log.child({ volume: graph.top.name });
  try {
    await graph.start();
  } catch (err) {
    await graph.stop();
    removePidfile(pidfile);
    return failStart("glusterfsd", logs, describeError(err), { volfile });
  }
  log.info({ msgid: "PROC_STARTED", volfile, volumes: [...graph.volumes.keys()] }, "started");
  const metricsServer = await serveMetrics(metricsAt, log);

  // Keeps the process alive even for a graph with nothing listening (a brick checked locally).
  const keepAlive = setInterval(() => undefined, 1 << 30);
  handleSignals({
    stop: async () => {
      clearInterval(keepAlive);
      metricsServer?.close();
      await graph.stop();
      removePidfile(pidfile);
    },
    hup: () => {
      logs.reopen();
      if (logs.file !== "-") log.info({ msgid: "LOG_REOPENED", file: logs.file }, "log reopened");
      reloadVolfile(graph, volfile, log);
    },
    usr1: () => statedump(graph, log),
    usr2: () => changeLogLevel(logs.log, log),
  }, logs, log);
  reportReady();
  return new Promise<number>(() => undefined); // runs until a signal ends the process
}

runCli("glusterfsd", main, USAGE);
