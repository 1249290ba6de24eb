// gluster-ha service start|stop|status|restart NAME [--run-dir DIR] [--log-file F] [--stop-timeout S] [-- CMD...]
// Supervised processes for hosts without systemd (see runtime/service/supervisor.ts).
import { parseArgs } from "node:util";
import {
  DEFAULT_RUN_DIR,
  lastCommand,
  serviceStatus,
  startService,
  stopService,
  supervise,
  type ServiceSpec,
} from "../../service/supervisor";
import type { Command } from "./command";

const USAGE =
  "usage: gluster-ha service start|stop|status|restart NAME [--run-dir DIR] [--log-file FILE] [--stop-timeout SECONDS] [-- COMMAND ARGS...]\n" +
  "  start/restart without a command reuse the one the service last ran\n";

/** How this CLI re-runs itself for the detached supervisor (also under tsx in tests). */
const selfArgv = (): string[] => [...process.execArgv, process.argv[1]!];

export const service: Command = {
  summary: "start|stop|status|restart a supervised process (hosts without systemd)",
  async run(argv) {
    const dashes = argv.indexOf("--");
    const own = dashes >= 0 ? argv.slice(0, dashes) : argv;
    const command = dashes >= 0 ? argv.slice(dashes + 1) : [];
    let parsed;
    try {
      parsed = parseArgs({
        args: own,
        allowPositionals: true,
        options: {
          "run-dir": { type: "string", default: DEFAULT_RUN_DIR },
          "log-file": { type: "string" },
          "stop-timeout": { type: "string", default: "10" },
        },
      });
    } catch (e) {
      process.stderr.write(`gluster-ha service: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    const [verb, name] = parsed.positionals;
    const stopTimeout = Number(parsed.values["stop-timeout"]);
    if (!verb || !name || !/^[A-Za-z0-9_.@-]+$/.test(name) || !(stopTimeout > 0)) {
      process.stderr.write(USAGE);
      return 2;
    }
    const runDir = parsed.values["run-dir"]!;
    const spec = (cmd: string[]): ServiceSpec => ({ name, runDir, command: cmd, logFile: parsed.values["log-file"], stopTimeout });

    switch (verb) {
      case "start": {
        const cmd = command.length ? command : lastCommand(runDir, name);
        if (!cmd) {
          process.stderr.write(`gluster-ha service start: ${name} has no recorded command; give it after --\n${USAGE}`);
          return 2;
        }
        const r = await startService(spec(cmd), selfArgv());
        process.stdout.write(`${name} ${r.started ? "started" : "already running"} pid=${r.pid}\n`);
        return 0;
      }
      case "stop": {
        const r = await stopService(runDir, name, stopTimeout);
        process.stdout.write(`${name} ${r.stopped ? "stopped" : "was not running"}\n`);
        return 0;
      }
      case "restart": {
        const cmd = command.length ? command : lastCommand(runDir, name);
        if (!cmd) {
          process.stderr.write(`gluster-ha service restart: ${name} has no recorded command; give it after --\n`);
          return 2;
        }
        await stopService(runDir, name, stopTimeout);
        const r = await startService(spec(cmd), selfArgv());
        process.stdout.write(`${name} restarted pid=${r.pid}\n`);
        return 0;
      }
      case "status": {
        const s = serviceStatus(runDir, name);
        if (!s.running) {
          process.stdout.write(`${name} stopped\n`);
          return 3; // LSB: program is not running
        }
        process.stdout.write(
          `${name} running pid=${s.state?.supervisorPid} child=${s.state?.childPid ?? "-"} restarts=${s.state?.restarts ?? 0}\n`,
        );
        return 0;
      }
      case "supervise": // internal: the detached supervisor started by `start`
        return supervise(spec(command));
      default:
        process.stderr.write(USAGE);
        return 2;
    }
  },
};
