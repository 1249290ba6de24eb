/** A gluster-ha subcommand: a one-line summary for the usage text, and run() returning the exit code. */
export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}
