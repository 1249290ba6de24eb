// Generates provider/args.ts (the component's TypeScript input types) from schema/cluster.json, so the
// types and the ajv validation cannot drift apart. Run: node --import tsx provider/codegen/gen-args.ts
// test/unit/provider-schema.test.ts fails when the checked-in file is not what this prints.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

interface JsonSchema {
  type?: string | string[];
  $ref?: string;
  anyOf?: JsonSchema[];
  const?: unknown;
  enum?: unknown[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  description?: string;
  definitions?: Record<string, JsonSchema>;
  "x-secret"?: boolean;
  "x-default-computed"?: boolean;
}

/** Two views of every object: `Args` (what users write) and `Config` (after defaults are applied). */
type View = "Args" | "Config";

const pascal = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function refName(ref: string): string {
  const m = /^#\/definitions\/(.+)$/.exec(ref);
  if (!m) throw new Error(`unsupported $ref ${ref}`);
  return m[1]!;
}

function tsType(schema: JsonSchema, root: JsonSchema, view: View): string {
  if (schema.$ref) {
    const name = refName(schema.$ref);
    const target = root.definitions![name]!;
    return target.properties ? `${pascal(name)}${view}` : tsType(target, root, view);
  }
  if (schema.anyOf) return schema.anyOf.map((s) => tsType(s, root, view)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  switch (schema.type) {
    case "string":
      return schema["x-secret"] ? "pulumi.Input<string>" : "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "array": {
      const item = tsType(schema.items!, root, view);
      return /[| ]/.test(item) ? `Array<${item}>` : `${item}[]`;
    }
    default:
      throw new Error(`unsupported schema type ${JSON.stringify(schema.type)}`);
  }
}

function docComment(schema: JsonSchema, indent: string): string {
  const parts = [schema.description ?? ""];
  if (schema.default !== undefined) parts.push(`Defaults to ${JSON.stringify(schema.default)}.`);
  const text = parts.filter(Boolean).join(" ").replace(/\*\//g, "*\\/");
  return text ? `${indent}/** ${text} */\n` : "";
}

function renderInterface(name: string, schema: JsonSchema, root: JsonSchema, view: View): string {
  const required = new Set(schema.required ?? []);
  let out = docComment(schema, "");
  out += `export interface ${name} {\n`;
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    // A $ref'd property's own description wins over the target's.
    const target = prop.$ref ? { ...root.definitions![refName(prop.$ref)]!, ...prop } : prop;
    const filled = view === "Config" && (prop.default !== undefined || target.default !== undefined || target["x-default-computed"]);
    const optional = !required.has(key) && !filled;
    out += docComment({ ...target, description: prop.description ?? target.description }, "  ");
    out += `  ${key}${optional ? "?" : ""}: ${tsType(prop, root, view)};\n`;
  }
  return `${out}}\n`;
}

export function generateArgs(schema: JsonSchema): string {
  let out =
    "// Generated from schema/cluster.json by provider/codegen/gen-args.ts. Do not edit by hand:\n" +
    "// change the schema and run `node --import tsx provider/codegen/gen-args.ts`.\n" +
    'import type * as pulumi from "@pulumi/pulumi";\n';
  for (const view of ["Args", "Config"] as const) {
    out += `\n${renderInterface(`Cluster${view}`, schema, schema, view)}`;
    for (const [name, def] of Object.entries(schema.definitions ?? {})) {
      if (def.properties) out += `\n${renderInterface(`${pascal(name)}${view}`, def, schema, view)}`;
    }
  }
  return out;
}

export const SCHEMA_PATH = join(__dirname, "..", "..", "schema", "cluster.json");
export const ARGS_PATH = join(__dirname, "..", "args.ts");

if (require.main === module) {
  writeFileSync(ARGS_PATH, generateArgs(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as JsonSchema));
  process.stdout.write(`wrote ${ARGS_PATH}\n`);
}
