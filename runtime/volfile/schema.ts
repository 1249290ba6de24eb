import Ajv, { type ValidateFunction } from "ajv";
import { ConfigError } from "../core/errors";
import type { XlatorDef } from "../core/xlator";

/** The placeholder in option-name templates made from `patternProperties` (`auth.ip.<volume>.allow`). */
export const VOLUME_PLACEHOLDER = "<volume>";

export type PropSchema = Record<string, unknown>;

/** A `patternProperties` entry with the option names it stands for, e.g. `auth.ip.<volume>.allow`. */
export interface OptionPattern {
  regex: RegExp;
  prop: PropSchema;
  /** Readable forms with `<volume>` placeholders; empty when the regex is too complex to spell out. */
  templates: string[];
}

/** A translator's options as the loader needs them: by name, aliases, patterns, and the ajv validator. */
export interface OptionTable {
  props: ReadonlyMap<string, PropSchema>;
  /** alias -> canonical name (from each property's `x-aliases`). */
  aliases: ReadonlyMap<string, string>;
  patterns: readonly OptionPattern[];
  required: readonly string[];
  validate: ValidateFunction;
}

// One ajv for every schema. The x- keywords are declared so strict mode still catches typos in schemas.
const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: true, strictTypes: false, strictTuples: false });
ajv.addKeyword({ keyword: "x-volfile", schemaType: "string" });
ajv.addKeyword({ keyword: "x-live", schemaType: "boolean" });
ajv.addKeyword({ keyword: "x-aliases", schemaType: "array" });

// Other `x-` annotations a schema author adds are metadata too: declare them rather than fail strict mode.
function declareAnnotations(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(declareAnnotations);
  if (node === null || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith("x-") && !ajv.getKeyword(key)) ajv.addKeyword({ keyword: key });
    declareAnnotations(value);
  }
}

const tables = new WeakMap<object, OptionTable>();

/** The option table of a translator (built once per schema). Throws ConfigError if the schema is broken. */
export function optionTable(def: XlatorDef<any>): OptionTable {
  const cached = tables.get(def.schema);
  if (cached) return cached;
  const schema = def.schema;
  const props = new Map<string, PropSchema>(Object.entries((schema.properties ?? {}) as Record<string, PropSchema>));
  const aliases = new Map<string, string>();
  for (const [name, prop] of props) {
    const names = prop["x-aliases"];
    if (Array.isArray(names)) for (const alias of names) aliases.set(String(alias), name);
  }
  const patterns = Object.entries((schema.patternProperties ?? {}) as Record<string, PropSchema>).map(([source, prop]) => ({
    regex: new RegExp(source, "u"),
    prop,
    templates: templatesOf(source),
  }));
  // The loader reads only the keys it knows; ajv must not need `$schema`/`title` to be meaningful.
  const { $schema: _ignored, ...compiled } = schema;
  let validate: ValidateFunction;
  try {
    declareAnnotations(compiled);
    validate = ajv.compile(compiled);
  } catch (err) {
    throw new ConfigError(`schema of ${def.type} is invalid: ${(err as Error).message}`);
  }
  const table: OptionTable = {
    props, aliases, patterns, validate,
    required: Array.isArray(schema.required) ? (schema.required as string[]) : [],
  };
  tables.set(def.schema, table);
  return table;
}

/** The property schema for an option name (canonical, alias or pattern), with its canonical key. */
export function findProp(table: OptionTable, key: string): { key: string; prop: PropSchema; pattern?: OptionPattern } | undefined {
  const canonical = table.aliases.get(key) ?? key;
  const prop = table.props.get(canonical);
  if (prop) return { key: canonical, prop };
  const pattern = table.patterns.find((p) => p.regex.test(key));
  return pattern ? { key, prop: pattern.prop, pattern } : undefined;
}

/** Every option name a volume of this type can take, patterns spelled out with the graph's volume names. */
export function knownNames(table: OptionTable, volumeNames: readonly string[]): string[] {
  const names = [...table.props.keys(), ...table.aliases.keys()];
  for (const p of table.patterns) {
    for (const t of p.templates) {
      for (const v of volumeNames) {
        const name = t.split(VOLUME_PLACEHOLDER).join(v);
        if (p.regex.test(name)) names.push(name);
      }
    }
  }
  return names;
}

/** For a key matching a one-placeholder template, the volume name it refers to (`auth.ip.gfs.allow` -> gfs). */
export function volumeInKey(pattern: OptionPattern, key: string): string | undefined {
  for (const t of pattern.templates) {
    const parts = t.split(VOLUME_PLACEHOLDER);
    if (parts.length !== 2) continue;
    const [prefix, suffix] = parts as [string, string];
    if (key.length > prefix.length + suffix.length && key.startsWith(prefix) && key.endsWith(suffix)) {
      return key.slice(prefix.length, key.length - suffix.length);
    }
  }
  return undefined;
}

/**
 * Spells out a patternProperties regex as readable names: `^auth\.ip\.[^.\s]+\.(allow|reject)$` ->
 * `auth.ip.<volume>.allow`, `auth.ip.<volume>.reject`. Handles literals, escapes, `(a|b)` groups,
 * `?`, and a repeated class/`.` as the placeholder; anything else gives [] (no suggestions, no docs).
 */
export function templatesOf(source: string): string[] {
  let s = source;
  if (s.startsWith("^")) s = s.slice(1);
  if (s.endsWith("$") && !s.endsWith("\\$")) s = s.slice(0, -1);
  try {
    const [alts, end] = parseAlternatives(s, 0);
    if (end !== s.length) return [];
    return [...new Set(alts)];
  } catch {
    return [];
  }
}

class TooComplex extends Error {}

// Returns the expansions of `a|b|...` starting at i, and where it stopped (at `)` or the end).
function parseAlternatives(s: string, start: number): [string[], number] {
  const out: string[] = [];
  let i = start;
  for (;;) {
    const [seq, next] = parseSequence(s, i);
    out.push(...seq);
    i = next;
    if (s[i] === "|") { i++; continue; }
    return [out, i];
  }
}

function parseSequence(s: string, start: number): [string[], number] {
  let acc = [""];
  let i = start;
  while (i < s.length && s[i] !== "|" && s[i] !== ")") {
    let piece: string[];
    let isClass = false;
    const c = s[i]!;
    if (c === "\\") {
      const e = s[i + 1];
      if (e === undefined) throw new TooComplex();
      if ("sSdDwWbB".includes(e)) isClass = true;
      piece = [e];
      i += 2;
    } else if (c === "[") {
      let j = i + 1;
      while (j < s.length && s[j] !== "]") j += s[j] === "\\" ? 2 : 1;
      if (j >= s.length) throw new TooComplex();
      isClass = true;
      piece = [""];
      i = j + 1;
    } else if (c === ".") {
      isClass = true;
      piece = [""];
      i++;
    } else if (c === "(") {
      i++;
      if (s.startsWith("?:", i)) i += 2;
      else if (s[i] === "?") throw new TooComplex();
      const [alts, end] = parseAlternatives(s, i);
      if (s[end] !== ")") throw new TooComplex();
      piece = alts;
      i = end + 1;
    } else if ("^$*+?{}".includes(c)) {
      throw new TooComplex();
    } else {
      piece = [c];
      i++;
    }
    const q = s[i];
    if (isClass) {
      if (q !== "+" && q !== "*") throw new TooComplex();
      piece = [VOLUME_PLACEHOLDER];
      i++;
    } else if (q === "?") {
      piece = ["", ...piece];
      i++;
    } else if (q === "+" || q === "*" || q === "{") {
      throw new TooComplex();
    }
    acc = acc.flatMap((a) => piece.map((p) => a + p));
    if (acc.length > 64) throw new TooComplex();
  }
  return [acc, i];
}
