// gluster-ha: the operator's CLI. Each subcommand lives in runtime/cli/commands/<name>.ts and exports
// `{ summary, run(argv) }`; this file only dispatches.
import { COMMANDS } from "./commands";

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const cmd = name ? COMMANDS[name] : undefined;
  if (!cmd || name === "--help" || name === "-h") {
    const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(12)} ${c.summary}`);
    process.stderr.write(`usage: gluster-ha <command> [options]\n\ncommands:\n${lines.join("\n")}\n`);
    return name && name !== "--help" && name !== "-h" ? 2 : 0;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`gluster-ha: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
