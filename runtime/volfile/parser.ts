import { ConfigError } from "../core/errors";
import { tokenize, type Token } from "./lexer";
import type { Volfile, VolfileVolume } from "./types";

const STATEMENTS = "volume, type, option, subvolumes or end-volume";

/**
 * Parses volfile text (syntax only) and returns every syntax error found, recovering at the next
 * line after each one. Block structure as in GlusterFS: `volume NAME`, `type CAT/NAME` first,
 * `option KEY VALUE...` and one `subvolumes A B...` in any order, `end-volume`; one statement a line.
 */
export function parseVolfileCollecting(text: string, file = "<volfile>"): { volfile: Volfile; errors: ConfigError[] } {
  const volumes: VolfileVolume[] = [];
  const errors: ConfigError[] = [];
  let lines: Token[][];
  try {
    lines = tokenize(text, file);
  } catch (err) {
    if (err instanceof ConfigError) return { volfile: { file, volumes }, errors: [err] };
    throw err;
  }

  let open: VolfileVolume | undefined;
  const close = (v: VolfileVolume, endLine: number): void => {
    v.endLine = endLine;
    volumes.push(v);
  };

  for (const tokens of lines) {
    const [head, ...words] = tokens as [Token, ...Token[]];
    const line = head.line;
    const err = (message: string): void => {
      errors.push(new ConfigError(message, { file, line, volume: open?.name }));
    };
    if (head.keyword === undefined) {
      err(`unexpected word "${head.text}": a line starts with ${STATEMENTS}`);
      continue;
    }
    const misplaced = words.find((w) => w.keyword !== undefined);
    if (misplaced) {
      err(`keyword "${misplaced.text}" out of place after ${head.keyword}: one statement a line (quote it to use it as a value)`);
      continue;
    }
    const texts = words.map((w) => w.text);

    switch (head.keyword) {
      case "volume": {
        if (open) {
          err(`volume "${open.name}" (line ${open.line}) is not closed: end-volume missing before this volume`);
          close(open, line);
          open = undefined;
        }
        if (texts.length !== 1) {
          err(texts.length === 0 ? "volume needs a name" : `volume takes one name, got ${texts.length} words: ${texts.join(" ")}`);
          // Recover: still open a block so its own lines are not reported as out of place.
        }
        open = {
          name: texts[0] ?? "", line, type: undefined, typeLine: undefined,
          options: [], subvolumes: [], subvolumesLine: undefined, endLine: line,
        };
        break;
      }
      case "type": {
        if (!open) { err(`type outside a volume block (start one with "volume NAME")`); break; }
        if (open.typeLine !== undefined) { err(`type given twice in volume "${open.name}" (first on line ${open.typeLine})`); break; }
        if (open.options.length > 0 || open.subvolumesLine !== undefined) {
          err(`type must be the first line of volume "${open.name}"`);
        }
        if (texts.length !== 1) {
          err(texts.length === 0 ? "type needs a value, e.g. type storage/posix" : `type takes one word, got ${texts.length}: ${texts.join(" ")}`);
          break;
        }
        open.type = texts[0];
        open.typeLine = line;
        break;
      }
      case "option": {
        if (!open) { err(`option outside a volume block (start one with "volume NAME")`); break; }
        if (texts.length < 2) {
          err(texts.length === 0 ? "option needs a name and a value" : `option "${texts[0]}" has no value`);
          break;
        }
        open.options.push({ key: texts[0]!, values: texts.slice(1), line });
        break;
      }
      case "subvolumes": {
        if (!open) { err(`subvolumes outside a volume block (start one with "volume NAME")`); break; }
        if (open.subvolumesLine !== undefined) {
          err(`subvolumes given twice in volume "${open.name}" (first on line ${open.subvolumesLine}): list them all on one line`);
          break;
        }
        if (texts.length === 0) { err("subvolumes needs at least one volume name"); break; }
        open.subvolumes = texts;
        open.subvolumesLine = line;
        break;
      }
      case "end-volume": {
        if (!open) { err("end-volume without a volume block"); break; }
        if (texts.length > 0) err(`end-volume takes no words, got: ${texts.join(" ")}`);
        close(open, line);
        open = undefined;
        break;
      }
    }
  }
  if (open) {
    errors.push(new ConfigError(`volume "${open.name}" is not closed: end-volume missing at end of file`, { file, line: open.line, volume: open.name }));
    close(open, open.line);
  }
  return { volfile: { file, volumes }, errors };
}

/** Parses volfile text (syntax only). Throws the first syntax error as a ConfigError "file:line: ...". */
export function parseVolfile(text: string, file = "<volfile>"): Volfile {
  const { volfile, errors } = parseVolfileCollecting(text, file);
  if (errors.length > 0) throw errors[0]!;
  return volfile;
}
