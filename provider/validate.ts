// Validates the component's inputs against schema/cluster.json (ajv), applies the defaults, and turns
// every failure into one message naming the field: `nodes[1].address: must be an IPv4 address`.
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../runtime/core/errors";
import schema from "../schema/cluster.json";
import type { ApacheConfig, ClusterArgs, ClusterConfig } from "./args";
import { replicaLayout, volumeOptions } from "./engines/glusterfs";

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const FQDN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const ABS_PATH = /^\/[^\0]*$/;

/** Plain-language messages for our formats (ajv's default reads `must match format "ipv4"`). */
const FORMAT_MESSAGES: Record<string, string> = {
  ipv4: "must be an IPv4 address",
  fqdn: "must be a fully qualified domain name (e.g. cluster.example.com)",
  "abs-path": "must be an absolute path",
};

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictRequired: false });
  ajv.addVocabulary(["x-secret", "x-default-computed"]);
  ajv.addFormat("ipv4", IPV4);
  ajv.addFormat("fqdn", FQDN);
  ajv.addFormat("abs-path", ABS_PATH);
  ajv.addSchema(schema);
  return ajv;
}

const ajv = makeAjv();
const validateCluster = ajv.getSchema("gluster-ha:cluster") as ValidateFunction;
// Defaults inside anyOf branches are not applied by ajv; the apache branch is filled by its own pass.
const fillApache = ajv.compile({ $ref: "gluster-ha:cluster#/definitions/apache" });

/** `/nodes/1/address` -> `nodes[1].address`. */
export function fieldName(instancePath: string, extra?: string): string {
  const parts = instancePath.split("/").slice(1).concat(extra ? [extra] : []);
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "") || "(root)";
}

function describe(e: ErrorObject, engine: unknown): string {
  switch (e.keyword) {
    case "required":
      return `${fieldName(e.instancePath, String(e.params.missingProperty))}: is required`;
    case "additionalProperties":
      return `${fieldName(e.instancePath, String(e.params.additionalProperty))}: is not a known field`;
    case "format":
      return `${fieldName(e.instancePath)}: ${FORMAT_MESSAGES[String(e.params.format)] ?? e.message}`;
    case "enum":
      return `${fieldName(e.instancePath)}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "minItems":
    case "maxItems":
      return fieldName(e.instancePath) === "nodes"
        ? engine === "glusterfs" ? "nodes: must list at least two storage nodes" : "nodes: must list exactly two storage nodes"
        : `${fieldName(e.instancePath)}: ${e.message}`;
    default:
      return `${fieldName(e.instancePath)}: ${e.message}`;
  }
}

/** Errors worth showing: `if`/`anyOf` wrappers only repeat what their branches said. */
function messages(errors: ErrorObject[], engine: unknown): string[] {
  const shown = errors.filter((e) => e.keyword !== "if" && e.keyword !== "anyOf");
  // `apache: true` fails both branches; one message is enough.
  const apacheConst = shown.find((e) => e.instancePath === "/apache" && e.keyword === "const");
  const filtered = apacheConst
    ? shown.filter((e) => !(e.instancePath === "/apache" && (e.keyword === "type" || e.keyword === "const")))
    : shown;
  const out = filtered.map((e) => describe(e, engine));
  if (apacheConst) out.push("apache: must be false or an object with serverName");
  return [...new Set(out)];
}

/** Secrets may be Outputs; validation sees a placeholder string, the config gets the Output back. */
function withPlaceholders(value: unknown, found: Array<{ path: (string | number)[]; output: unknown }>, path: (string | number)[] = []): unknown {
  if (pulumi.Output.isInstance(value)) {
    found.push({ path, output: value });
    return "<output>";
  }
  if (Array.isArray(value)) return value.map((v, i) => withPlaceholders(v, found, [...path, i]));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withPlaceholders(v, found, [...path, k])]));
  }
  return value;
}

function setAt(target: unknown, path: (string | number)[], value: unknown): void {
  let cur = target as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
}

/** Checks the schema cannot express: distinct names, the zone holding the cluster name, the engine's limits. */
function crossChecks(c: ClusterConfig, args: ClusterArgs): string[] {
  const out: string[] = [];
  c.nodes.forEach((n, i) => {
    const j = c.nodes.findIndex((m) => m.name === n.name);
    if (j < i) out.push(`nodes[${i}].name: must differ from nodes[${j}].name ("${n.name}")`);
    const k = c.nodes.findIndex((m) => m.address === n.address);
    if (k < i) out.push(`nodes[${i}].address: must differ from nodes[${k}].address`);
  });
  out.push(...(c.engine === "glusterfs" ? glusterfsChecks(c, args) : bundledChecks(c, args)));
  if (c.nodes.some((n) => n.name === c.client.name)) out.push(`client.name: must differ from the nodes' names`);
  const zone = c.dns.rfc2136?.zone;
  if (c.dns.mode === "rfc2136" && zone && !`.${c.clusterName.toLowerCase()}`.endsWith(`.${zone.toLowerCase().replace(/\.$/, "")}`)) {
    out.push(`dns.rfc2136.zone: "${zone}" does not contain clusterName "${c.clusterName}"`);
  }
  if (c.apache && c.apache.documentRoot.split("/").includes("..")) out.push("apache.documentRoot: must stay inside the mount (no ..)");
  return out;
}

function bundledChecks(c: ClusterConfig, args: ClusterArgs): string[] {
  const out: string[] = [];
  if (c.nodes.length !== 2) out.push("nodes: must list exactly two storage nodes");
  if (args.volumeName !== undefined && args.volumeName !== "gfs") out.push(`volumeName: only engine glusterfs names its volume (the bundled engine's is "gfs")`);
  if (c.arbiter) out.push("arbiter: only engine glusterfs has arbiter bricks");
  return out;
}

/** Settings of the bundled runtime that GlusterFS has no place for are refused rather than ignored. */
function glusterfsChecks(c: ClusterConfig, args: ClusterArgs): string[] {
  const out: string[] = [];
  for (const check of [() => replicaLayout(c.nodes.length, c.arbiter), () => volumeOptions(c.options, c.authAllow)]) {
    try {
      check();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      out.push(e.message);
    }
  }
  if (args.listenPort !== undefined) out.push("listenPort: engine glusterfs uses glusterd's ports (24007, bricks from 49152), remove listenPort");
  if (c.replication === "client") out.push('replication: engine glusterfs replicates with its own AFR, remove replication: "client"');
  args.nodes.forEach((n, i) => {
    if (n.bindAddress !== undefined) out.push(`nodes[${i}].bindAddress: engine glusterfs listens on all addresses, remove bindAddress`);
  });
  return out;
}

/**
 * Validates the inputs and returns them with every default filled in. Throws ConfigError naming each
 * bad field (the component turns it into a pulumi.ResourceError).
 */
export function resolveClusterConfig(args: ClusterArgs): ClusterConfig {
  const outputs: Array<{ path: (string | number)[]; output: unknown }> = [];
  const data = withPlaceholders(args, outputs) as Record<string, unknown>;
  const engine = data && typeof data === "object" ? data.engine : undefined;
  if (!validateCluster(data)) throw new ConfigError(messages(validateCluster.errors ?? [], engine).join("; "));
  const c = data as unknown as ClusterConfig;
  if (c.apache) fillApache(c.apache);
  // Defaults computed from other fields.
  for (const n of c.nodes) n.bindAddress ??= n.address;
  c.client.remoteHost ??= c.clusterName;
  c.authAllow ??= [...new Set([...c.nodes.map((n) => n.address), c.client.address, "127.0.0.1"])];
  if (c.apache) (c.apache as ApacheConfig).configDir ??= c.apache.layout === "rhel" ? "/etc/httpd" : "/etc/apache2";
  const problems = crossChecks(c, args);
  if (problems.length) throw new ConfigError(problems.join("; "));
  for (const { path, output } of outputs) setAt(c, path, output);
  return c;
}
