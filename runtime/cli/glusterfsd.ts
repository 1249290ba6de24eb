// glusterfsd -f VOLFILE: runs a server graph (bricks, locks, replication, protocol/server listening).
import { parseArgs } from "node:util";
import { Graph } from "../core/graph";
import type { LogHandle } from "../core/log";
import { volfileCheckMain } from "../volfile/check";
import {
  COMMON_FLAGS, daemonize, describeError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, handleSignals, isDaemonChild,
  openProcessLog, asUsage, reloadVolfile, removePidfile, reportFailure, reportReady, UsageError,
  writePidfile, writeStatedump,
} from "./_common";

const USAGE = `usage: glusterfsd -f VOLFILE [options]

  -f, --volfile FILE     the server volfile
  -p, --pidfile FILE     write the process id here (refused while another live process holds it)
  -l, --log-file FILE    log here (default: stderr; /var/log/glusterfsd.log with --daemon)
  -L, --log-level LEVEL  TRACE DEBUG INFO WARNING ERROR CRITICAL NONE (default INFO)
      --daemon           detach once the graph is up (default: stay in the foreground)
      --volfile-check    check the volfile and exit (0 clean, 1 errors)

Signals: TERM/INT stop cleanly; HUP re-reads the volfile (live options applied, the rest logged as
needing a restart) and reopens the log; USR1 writes a statedump to /tmp/glusterdump.<pid>.<time>.
`;

const FLAGS = { ...COMMON_FLAGS, daemon: { type: "boolean", short: "d" }, foreground: { type: "boolean", short: "N" } } as const;

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

  if (daemon && !isDaemonChild()) return daemonize("glusterfsd");
  return run(values.volfile, pidfile, openProcessLog("glusterfsd", logFile, values["log-level"]));
}

async function run(volfile: string, pidfile: string | undefined, logs: LogHandle): Promise<number> {
  let graph: Graph;
  try {
    graph = Graph.fromFile(volfile, { log: logs.log });
    if (pidfile) writePidfile(pidfile);
  } catch (err) {
    return fail(logs, describeError(err), { volfile });
  }
  const log = logs.log.child({ volume: graph.top.name });
  try {
    await graph.start();
  } catch (err) {
    await graph.stop();
    removePidfile(pidfile);
    return fail(logs, describeError(err), { volfile });
  }
  log.info({ volfile, volumes: [...graph.volumes.keys()] }, "started");

  // Keeps the process alive even for a graph with nothing listening (a brick checked locally).
  const keepAlive = setInterval(() => undefined, 1 << 30);
  handleSignals({
    stop: async () => {
      clearInterval(keepAlive);
      await graph.stop();
      removePidfile(pidfile);
    },
    hup: () => {
      logs.reopen();
      reloadVolfile(graph, volfile, log);
    },
    usr1: () => {
      const path = writeStatedump({ volfile, graph: graph.dump() });
      log.info({ path }, "statedump written");
    },
  }, logs, log);
  reportReady();
  return new Promise<number>(() => undefined); // runs until a signal ends the process
}

async function fail(logs: LogHandle, message: string, fields: Record<string, unknown>): Promise<number> {
  logs.log.error(fields, message);
  logs.flush();
  if (logs.file !== "-") process.stderr.write(`glusterfsd: ${message}\n`);
  await reportFailure(message, EXIT_FAIL);
  return EXIT_FAIL;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`glusterfsd: ${describeError(err)}\n`);
    if (err instanceof UsageError) process.stderr.write(USAGE);
    process.exit(err instanceof UsageError ? EXIT_USAGE : EXIT_FAIL);
  },
);
