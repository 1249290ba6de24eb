import { ConfigError } from "../core/errors";
import { readVolfileText } from "./index";
import { parseVolfileCollecting } from "./parser";
import { collectVolfileErrors } from "./validate";

/**
 * `--volfile-check`: prints every problem of the volfile (one `file:line: message` a line, on stderr)
 * or `ok: FILE (N volumes, top: X)` on stdout. Returns the exit code: 0 clean, 1 otherwise.
 */
export function volfileCheckMain(file: string): number {
  let errors: ConfigError[];
  let summary = "";
  try {
    const { volfile, errors: syntax } = parseVolfileCollecting(readVolfileText(file), file);
    // Semantic errors on a file with syntax errors would mostly be echoes of them.
    errors = syntax.length > 0 ? syntax : collectVolfileErrors(volfile);
    const top = volfile.volumes[volfile.volumes.length - 1]?.name;
    summary = `ok: ${file} (${volfile.volumes.length} volume${volfile.volumes.length === 1 ? "" : "s"}, top: ${top})`;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    errors = [err];
  }
  if (errors.length === 0) {
    process.stdout.write(`${summary}\n`);
    return 0;
  }
  for (const e of errors) process.stderr.write(`${e.message}\n`);
  process.stderr.write(`${file}: ${errors.length} error${errors.length === 1 ? "" : "s"}\n`);
  return 1;
}
