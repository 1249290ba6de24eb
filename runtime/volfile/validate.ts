import type { ErrorObject } from "ajv";
import { ConfigError } from "../core/errors";
import type { XlatorDef } from "../core/xlator";
import { XLATORS, XLATOR_ALIASES, findXlator } from "../xlators/registry";
import { convertValue, kindOf, takesManyWords, type ValueKind } from "./convert";
import { findProp, knownNames, optionTable, volumeInKey, type OptionTable, type PropSchema } from "./schema";
import { closestName, didYouMean, withSuggestionBudget } from "./suggest";
import type { CheckedVolfile, CheckedVolume, Volfile, VolfileOption, VolfileVolume } from "./types";

/** Where the check finds translator definitions (the registry; tests may pass their own). */
export interface XlatorCatalog {
  find(type: string): XlatorDef<any> | undefined;
  /** Every accepted type name (aliases included), for "known types" in errors. */
  types: readonly string[];
}

export const REGISTRY_CATALOG: XlatorCatalog = {
  find: findXlator,
  get types() {
    return [...XLATORS.keys(), ...XLATOR_ALIASES.keys()].sort();
  },
};

/** Every problem of a parsed volfile (types, options, subvolumes, graph shape), sorted by line. */
export function collectVolfileErrors(v: Volfile, catalog: XlatorCatalog = REGISTRY_CATALOG): ConfigError[] {
  return checkAll(v, catalog).errors;
}

/** Checks a parsed volfile: converted options with defaults, resolved types. Throws the first ConfigError. */
export function checkVolfile(v: Volfile, catalog: XlatorCatalog = REGISTRY_CATALOG): CheckedVolfile {
  const { errors, checked } = checkAll(v, catalog);
  if (errors.length > 0 || !checked) throw errors[0] ?? new ConfigError("volfile check failed", { file: v.file, line: 1 });
  return checked;
}

// About a second of edit-distance work: enough for every hint of any sane file.
const SUGGESTION_WORK = 200_000_000;

function checkAll(v: Volfile, catalog: XlatorCatalog): { errors: ConfigError[]; checked?: CheckedVolfile } {
  return withSuggestionBudget(SUGGESTION_WORK, () => checkAllWithin(v, catalog));
}

function checkAllWithin(v: Volfile, catalog: XlatorCatalog): { errors: ConfigError[]; checked?: CheckedVolfile } {
  const errors: ConfigError[] = [];
  const names = v.volumes.map((vol) => vol.name);
  const firstIndex = new Map<string, number>();
  v.volumes.forEach((vol, i) => { if (!firstIndex.has(vol.name)) firstIndex.set(vol.name, i); });
  const checkedVolumes: CheckedVolume[] = [];
  const cycles = findCycles(v, firstIndex);

  if (v.volumes.length === 0) errors.push(new ConfigError("no volumes defined (a volfile needs at least one volume ... end-volume block)", { file: v.file, line: 1 }));

  v.volumes.forEach((vol, index) => {
    const err = (line: number, message: string, option?: string): void => {
      errors.push(new ConfigError(message, { file: v.file, line, volume: vol.name, option }));
    };
    const first = firstIndex.get(vol.name)!;
    if (first !== index) err(vol.line, `volume "${vol.name}" defined twice (first on line ${v.volumes[first]!.line})`);

    let def: XlatorDef<any> | undefined;
    if (vol.type === undefined) {
      err(vol.line, `volume "${vol.name}" has no type line (e.g. "type storage/posix")`);
    } else {
      def = catalog.find(vol.type);
      if (!def) {
        err(vol.typeLine ?? vol.line, `unknown type "${vol.type}" in volume "${vol.name}"${didYouMean(vol.type, catalog.types)}; known types: ${catalog.types.join(", ")}`);
      }
    }

    let options: Record<string, unknown> | undefined;
    const optionLines: Record<string, number> = {};
    if (def) {
      try {
        options = checkOptions(vol, def, optionTable(def), names, err, optionLines);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        err(vol.typeLine ?? vol.line, e.message); // a broken schema
      }
    }

    checkSubvolumes(v, vol, index, firstIndex, cycles, err);
    if (def) {
      const n = vol.subvolumes.length;
      const { min, max } = def.children;
      if (n < min || n > max) {
        const range = min === max ? `${min}` : max === Infinity || max >= Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min} to ${max}`;
        err(vol.subvolumesLine ?? vol.line, `type ${def.type} takes ${range} subvolume${min === 1 && max === 1 ? "" : "s"}; volume "${vol.name}" has ${n}`);
      }
    }
    if (def && options) checkedVolumes.push({ name: vol.name, type: def.type, line: vol.line, options, subvolumes: [...vol.subvolumes], optionLines });
  });

  // Only the top (the last volume) may stand alone: anything else unused is a leftover or a typo.
  const used = new Set(v.volumes.flatMap((vol) => vol.subvolumes));
  v.volumes.forEach((vol, index) => {
    if (index === v.volumes.length - 1 || firstIndex.get(vol.name) !== index || used.has(vol.name)) return;
    const top = v.volumes[v.volumes.length - 1]!.name;
    errors.push(new ConfigError(
      `volume "${vol.name}" is not used by any other volume (only the last volume, "${top}", is the top of the graph)`,
      { file: v.file, line: vol.line, volume: vol.name },
    ));
  });

  errors.sort((a, b) => (a.where?.line ?? 0) - (b.where?.line ?? 0));
  if (errors.length > 0) return { errors };
  return { errors, checked: { file: v.file, top: v.volumes[v.volumes.length - 1]!.name, volumes: checkedVolumes } };
}

type Report = (line: number, message: string, option?: string) => void;

function checkSubvolumes(
  v: Volfile, vol: VolfileVolume, index: number, firstIndex: ReadonlyMap<string, number>, cycles: ReadonlyMap<string, Cycle>, err: Report,
): void {
  const line = vol.subvolumesLine ?? vol.line;
  const seen = new Set<string>();
  for (const sub of vol.subvolumes) {
    if (seen.has(sub)) { err(line, `subvolume "${sub}" listed twice in volume "${vol.name}"`); continue; }
    seen.add(sub);
    if (sub === vol.name) { err(line, `volume "${vol.name}" lists itself as a subvolume`); continue; }
    const at = firstIndex.get(sub);
    if (at === undefined) {
      const earlier = v.volumes.slice(0, index).map((x) => x.name);
      err(line, `unknown subvolume "${sub}" in volume "${vol.name}"${didYouMean(sub, earlier)}: no volume of that name is defined`);
    } else if (at > index) {
      const cycle = cycles.get(`${vol.name}\0${sub}`);
      err(line, cycle
        ? `cycle: ${describeCycle(cycle)} (subvolume "${sub}" is defined later, on line ${v.volumes[at]!.line})`
        : `subvolume "${sub}" is defined later (line ${v.volumes[at]!.line}): a volume may only use volumes defined before it`);
    }
  }
}

/** A cycle of volumes (shared by all its edges) and where the edge's parent sits in it. */
interface Cycle {
  ring: readonly string[];
  at: number;
}

// "a" -> "b" -> "a", starting at the edge's parent; long rings are shortened.
function describeCycle({ ring, at }: Cycle): string {
  const shown: string[] = [];
  for (let k = 0; k <= Math.min(ring.length, 6); k++) shown.push(`"${ring[(at + k) % ring.length]}"`);
  return ring.length > 6 ? `${shown.join(" -> ")} -> ... (${ring.length} volumes)` : shown.join(" -> ");
}

/**
 * Every cycle of the subvolume graph, keyed by each of its edges "parent\0child", as the list of names
 * around it starting at that parent. One iterative depth-first walk: no recursion limit, linear in the file's size.
 */
function findCycles(v: Volfile, firstIndex: ReadonlyMap<string, number>): Map<string, Cycle> {
  const cycles = new Map<string, Cycle>();
  const state = new Map<string, "open" | "done">();
  for (const root of firstIndex.keys()) {
    if (state.has(root)) continue;
    const path: string[] = [root];
    const next: number[] = [0]; // per path entry: index of its next subvolume to visit
    state.set(root, "open");
    while (path.length > 0) {
      const name = path[path.length - 1]!;
      const subs = v.volumes[firstIndex.get(name)!]!.subvolumes;
      const i = next[next.length - 1]!;
      if (i >= subs.length) {
        state.set(name, "done");
        path.pop();
        next.pop();
        continue;
      }
      next[next.length - 1] = i + 1;
      const sub = subs[i]!;
      if (!firstIndex.has(sub) || sub === name) continue;
      const s = state.get(sub);
      if (s === "open") {
        // Record it under each of its edges, starting at that edge, so any edge's error can name it.
        const ring = path.slice(path.indexOf(sub));
        ring.forEach((from, k) => cycles.set(`${from}\0${ring[(k + 1) % ring.length]}`, { ring, at: k }));
      } else if (s === undefined) {
        state.set(sub, "open");
        path.push(sub);
        next.push(0);
      }
    }
  }
  return cycles;
}

function checkOptions(
  vol: VolfileVolume,
  def: XlatorDef<any>,
  table: OptionTable,
  volumeNames: readonly string[],
  err: Report,
  optionLines: Record<string, number>,
): Record<string, unknown> | undefined {
  const values: Record<string, unknown> = {};
  const lineOf = new Map<string, number>();
  const kinds = new Map<string, { kind: ValueKind; prop: PropSchema }>();
  const given = new Set<string>(); // keys written, even with a bad value: not "missing"
  let ok = true;
  for (const opt of vol.options) {
    const found = findProp(table, opt.key);
    if (found) given.add(found.key);
    if (!found) {
      err(opt.line, `unknown option "${opt.key}" for ${def.type}${suggestOption(opt, table, volumeNames)}; valid options: ${validList(table)}`, opt.key);
      ok = false;
      continue;
    }
    if (found.pattern) {
      const ref = volumeInKey(found.pattern, opt.key);
      if (ref !== undefined && !volumeNames.includes(ref)) {
        const fix = closestName(ref, volumeNames);
        const hint = fix !== undefined ? ` (did you mean "${opt.key.replace(ref, fix)}"?)` : "";
        err(opt.line, `option "${opt.key}" names volume "${ref}", which is not defined in this file${hint}`, opt.key);
        ok = false;
        continue;
      }
    }
    const previous = lineOf.get(found.key);
    if (previous !== undefined) {
      err(opt.line, `option "${found.key}" given twice in volume "${vol.name}" (also on line ${previous})`, opt.key);
      ok = false;
      continue;
    }
    const kind = kindOf(found.prop);
    if (!takesManyWords(kind) && opt.values.length > 1) {
      const joined = opt.values.join("");
      const joinable = kind !== "string" && kind !== "path" && convertValue(kind, [joined], found.prop).ok;
      const hint = joinable ? ` (did you mean "${joined}"?)` : " (quote a value that contains spaces)";
      err(opt.line, `option "${opt.key}" takes one value, got ${opt.values.length} words: ${opt.values.join(" ")}${hint}`, opt.key);
      ok = false;
      continue;
    }
    const converted = convertValue(kind, opt.values, found.prop);
    if (!converted.ok) {
      err(opt.line, `option "${opt.key}": bad value "${opt.values.join(" ")}": expected ${converted.expected}`, opt.key);
      ok = false;
      continue;
    }
    values[found.key] = converted.value;
    lineOf.set(found.key, opt.line);
    optionLines[found.key] = opt.line;
    kinds.set(found.key, { kind, prop: found.prop });
  }

  if (!table.validate(values)) {
    for (const e of table.validate.errors ?? []) {
      const key = e.keyword === "required" ? String(e.params.missingProperty) : decodePointer(e.instancePath);
      if (e.keyword === "required") {
        if (given.has(key)) continue;
        const desc = table.props.get(key)?.description;
        err(vol.line, `volume "${vol.name}" (${def.type}) needs option "${key}"${typeof desc === "string" ? `: ${desc}` : ""}`, key);
      } else {
        const line = lineOf.get(key) ?? vol.line;
        err(line, `option "${key}": ${describeAjvError(e, values[key], kinds.get(key)?.kind)}`, key);
      }
    }
    return undefined;
  }
  return ok ? values : undefined;
}

// "auth.ip.gfs-ds- locks.allow": a stray space splits the name; joining the words gives a known name.
function suggestOption(opt: VolfileOption, table: OptionTable, volumeNames: readonly string[]): string {
  for (let i = 1; i < opt.values.length; i++) {
    const joined = opt.key + opt.values.slice(0, i).join("");
    const found = findProp(table, joined);
    const ref = found?.pattern ? volumeInKey(found.pattern, joined) : undefined;
    if (found && (ref === undefined || volumeNames.includes(ref))) {
      return ` (did you mean "${joined}"? an option name has no spaces)`;
    }
  }
  return didYouMean(opt.key, knownNames(table, volumeNames));
}

function validList(table: OptionTable): string {
  const names = [...table.props.keys(), ...table.patterns.flatMap((p) => (p.templates.length > 0 ? p.templates : [`/${p.regex.source}/`]))];
  return names.length > 0 ? names.join(", ") : "(none)";
}

function decodePointer(pointer: string): string {
  const first = pointer.split("/")[1] ?? "";
  return first.replace(/~1/g, "/").replace(/~0/g, "~");
}

function formatLimit(limit: unknown, kind: ValueKind | undefined): string {
  if (typeof limit !== "number") return String(limit);
  if (kind === "size") {
    const units = ["PB", "TB", "GB", "MB", "KB"];
    for (let i = 0; i < units.length; i++) {
      const unit = 1024 ** (units.length - i);
      if (limit >= unit && limit % unit === 0) return `${limit} (${limit / unit}${units[i]})`;
    }
    return `${limit} bytes`;
  }
  if (kind === "duration") return `${limit} seconds`;
  return String(limit);
}

function describeAjvError(e: ErrorObject, value: unknown, kind: ValueKind | undefined): string {
  const shown = formatLimit(value, kind);
  switch (e.keyword) {
    case "minimum":
      return `${shown} is below the minimum ${formatLimit(e.params.limit, kind)}`;
    case "exclusiveMinimum":
      return `${shown} must be above ${formatLimit(e.params.limit, kind)}`;
    case "maximum":
      return `${shown} is above the maximum ${formatLimit(e.params.limit, kind)}`;
    case "exclusiveMaximum":
      return `${shown} must be below ${formatLimit(e.params.limit, kind)}`;
    case "minItems":
      return `needs at least ${String(e.params.limit)} entr${e.params.limit === 1 ? "y" : "ies"}`;
    case "maxItems":
      return `takes at most ${String(e.params.limit)} entries`;
    case "type":
      return `expected ${String(e.params.type)}, got ${JSON.stringify(value)}`;
    case "enum":
      return `expected one of ${(e.params.allowedValues as unknown[]).join(", ")}`;
    default:
      return `${JSON.stringify(value)} ${e.message ?? "is not valid"}`;
  }
}
