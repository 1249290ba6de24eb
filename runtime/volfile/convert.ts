/** How the raw text of an option becomes a typed value (the schema's `x-volfile`). */
export type ValueKind = "size" | "int" | "bool" | "duration" | "address-list" | "string" | "path" | "enum" | "number";

export const VALUE_KINDS: readonly ValueKind[] = ["size", "int", "bool", "duration", "address-list", "string", "path", "enum", "number"];

/** The result of converting one option's words: a value, or what was expected instead. */
export type Converted = { ok: true; value: unknown } | { ok: false; expected: string };

const SIZE_UNITS: Record<string, number> = { "": 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4, PB: 1024 ** 5 };
const TRUE_WORDS = new Set(["on", "yes", "true", "enable", "1"]);
const FALSE_WORDS = new Set(["off", "no", "false", "disable", "0"]);
// An address-list entry: a host name, IPv4/IPv6 address or fnmatch glob, optionally `!`-negated or CIDR.
const ADDRESS_ENTRY = /^!?[A-Za-z0-9._:*?[\]-]+(\/\d{1,3})?$/;

/** The kind for a property: its `x-volfile`, else inferred from its JSON type. */
export function kindOf(prop: Record<string, unknown>): ValueKind {
  const declared = prop["x-volfile"];
  if (typeof declared === "string" && (VALUE_KINDS as readonly string[]).includes(declared)) return declared as ValueKind;
  if (Array.isArray(prop.enum)) return "enum";
  switch (prop.type) {
    case "integer": return "int";
    case "number": return "number";
    case "boolean": return "bool";
    case "array": return "address-list";
    default: return "string";
  }
}

/** Whether the kind takes several words (joined by a space); every other kind takes exactly one. */
export function takesManyWords(kind: ValueKind): boolean {
  return kind === "address-list";
}

/** Converts the words of one option to its typed value, per GlusterFS's rules (gf_string2bytesize, ...). */
export function convertValue(kind: ValueKind, words: readonly string[], prop: Record<string, unknown>): Converted {
  const text = words.join(" ");
  switch (kind) {
    case "size": {
      const m = /^(\d+)(KB|MB|GB|TB|PB)?$/i.exec(text);
      const value = m ? Number(m[1]) * SIZE_UNITS[(m[2] ?? "").toUpperCase()]! : NaN;
      if (!Number.isSafeInteger(value)) {
        return { ok: false, expected: "a size: whole bytes, or with a unit KB, MB, GB, TB or PB written right after the number (powers of 1024), e.g. 64MB" };
      }
      return { ok: true, value };
    }
    case "int": {
      const value = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
      return Number.isSafeInteger(value) ? { ok: true, value } : { ok: false, expected: "a whole number" };
    }
    case "number":
    case "duration": {
      const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
      if (!Number.isFinite(value)) return { ok: false, expected: kind === "duration" ? "a duration in seconds, e.g. 42 or 0.5" : "a number" };
      return { ok: true, value };
    }
    case "bool": {
      const lower = text.toLowerCase();
      if (TRUE_WORDS.has(lower)) return { ok: true, value: true };
      if (FALSE_WORDS.has(lower)) return { ok: true, value: false };
      return { ok: false, expected: "a boolean: on/off, yes/no, true/false, enable/disable or 1/0" };
    }
    case "address-list": {
      const entries = text.split(/[\s,]+/).filter((e) => e !== "");
      const bad = entries.find((e) => !ADDRESS_ENTRY.test(e));
      if (entries.length === 0 || bad !== undefined) {
        return {
          ok: false,
          expected: `addresses separated by commas or spaces: names, IPs, * wildcards or CIDR ranges, e.g. 10.0.0.*,127.0.0.1${bad !== undefined ? ` ("${bad}" is not one)` : ""}`,
        };
      }
      return { ok: true, value: entries };
    }
    case "path":
      return text.startsWith("/") ? { ok: true, value: text } : { ok: false, expected: "an absolute path (starting with /)" };
    case "enum": {
      const choices = Array.isArray(prop.enum) ? (prop.enum as unknown[]).map(String) : [];
      const match = choices.find((c) => c.toLowerCase() === text.toLowerCase());
      return match !== undefined ? { ok: true, value: match } : { ok: false, expected: `one of ${choices.join(", ")}` };
    }
    case "string":
      return { ok: true, value: text };
  }
}
