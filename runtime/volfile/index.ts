import { readFileSync } from "node:fs";
import { ConfigError } from "../core/errors";
import { parseVolfile } from "./parser";
import { checkVolfile } from "./validate";
import type { CheckedVolfile } from "./types";

export type { Volfile, VolfileVolume, VolfileOption, CheckedVolfile, CheckedVolume } from "./types";
export { parseVolfile, parseVolfileCollecting } from "./parser";
export { checkVolfile, collectVolfileErrors, REGISTRY_CATALOG, type XlatorCatalog } from "./validate";
export { convertValue, kindOf, type ValueKind } from "./convert";

/** Reads the volfile as UTF-8. An unreadable file is a ConfigError naming it. */
export function readVolfileText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "EIO";
    throw new ConfigError(`${path}: cannot read volfile (${code})`);
  }
}

/** Reads, parses and checks a volfile. Throws the first ConfigError. */
export function loadVolfile(path: string): CheckedVolfile {
  return checkVolfile(parseVolfile(readVolfileText(path), path));
}
