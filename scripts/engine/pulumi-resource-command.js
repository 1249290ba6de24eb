#!/usr/bin/env node
// The `command` resource provider plugin that @pulumi/command's SDK talks to.
//
// Why this exists: the upstream provider (Go module github.com/pulumi/pulumi-command/provider) is not
// served by the Go module proxy this project can reach, and its binary is only published on a host
// that is unreachable. This plugin is served by @pulumi/pulumi's own provider framework and follows
// the upstream semantics documented in @pulumi/command's types:
// - Command (local and remote): `create` runs on creation; on an input change `update` runs if given,
//   else the resource is replaced (so `create` runs again); `delete` runs on deletion with
//   PULUMI_COMMAND_STDOUT/STDERR of the last run; a non-zero exit fails the step; stdout/stderr are
//   outputs. Local commands run through `interpreter` (default /bin/sh -c) in `dir`.
// - remote commands and copies go through the OpenSSH client (ssh/scp): `connection` gives host, port,
//   user, privateKey or password (fed through SSH_ASKPASS), agentSocketPath, hostKey, dialErrorLimit
//   and perDialTimeout. CopyToRemote copies a FileAsset, StringAsset or FileArchive (a directory);
//   CopyFile copies localPath. Copies are replaced on any change and leave the remote files on delete.
// - the local.run function.
// Not implemented, refused at check time: assetPaths/archivePaths outputs, connection.proxy and
// remote archives of other kinds.
"use strict";
const { spawn } = require("node:child_process");
const { randomBytes } = require("node:crypto");
const { mkdtempSync, rmSync, writeFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const { tmpdir } = require("node:os");
const { join } = require("node:path");

/** Version reported to the engine: the @pulumi/command SDK version this plugin stands in for. */
const PLUGIN_VERSION = process.env.PULUMI_COMMAND_PLUGIN_VERSION || "0.0.0";
const SIG = "4dabf18193072939515e22adb298388d";
/** Inputs of a Command whose change means an update (or a replacement when there is no `update`). */
const COMMAND_INPUTS = ["create", "update", "delete", "dir", "environment", "interpreter", "stdin", "triggers", "addPreviousOutputInEnv", "logging", "connection"];

function pulumiRequire() {
  const fallback = process.env.PULUMI_ENGINE_NODE_MODULES;
  const paths = [process.cwd(), ...(fallback ? [fallback] : [])];
  return createRequire(require.resolve("@pulumi/pulumi/package.json", { paths }));
}

/** Secret-wrapped values arrive as {SIG: secret-sig, value}; commands need the plain value. */
function reveal(value) {
  if (Array.isArray(value)) return value.map(reveal);
  if (value && typeof value === "object") {
    if (SIG in value && "value" in value) return reveal(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}

// A component's child carries the parent's type chain in its URN: "pkg:index:Parent$command:local:Command".
const typeOf = (urn) => (urn.split("::")[2] ?? "").split("$").pop();
const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** Runs a program to completion; rejects with the exit status and output unless it exits 0. */
function execute(program, args, { env = process.env, cwd = process.cwd(), stdin = "", what }) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      // Upstream trims one trailing newline from each stream.
      const out = { stdout: stdout.replace(/\r?\n$/, ""), stderr: stderr.replace(/\r?\n$/, ""), code };
      if (code === 0) resolve(out);
      else reject(Object.assign(new Error(`exit status ${code ?? signal}: ${what}:\n${out.stderr || out.stdout}`), { code, stderr: out.stderr }));
    });
    child.stdin.on("error", () => {}); // the program may exit without reading stdin
    child.stdin.end(stdin);
  });
}

/** ssh/scp options for a `connection`, with the temp files they need (removed by cleanup()). */
function sshSession(connection) {
  const c = reveal(connection);
  const dir = mkdtempSync(join(tmpdir(), "pulumi-command-ssh-"));
  const options = [
    "-o", "BatchMode=" + (c.password || c.privateKeyPassword ? "no" : "yes"),
    "-o", `ConnectTimeout=${c.perDialTimeout ?? 15}`,
    "-o", "LogLevel=ERROR",
    "-P_PORT", String(c.port ?? 22),
  ];
  const env = { ...process.env };
  if (c.hostKey) {
    // OpenSSH looks a host up as "host" on port 22 and as "[host]:port" on any other.
    const known = (c.port ?? 22) === 22 ? c.host : `[${c.host}]:${c.port}`;
    writeFileSync(join(dir, "known_hosts"), `${known} ${c.hostKey}\n`);
    options.push("-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`, "-o", "StrictHostKeyChecking=yes");
  } else {
    options.push("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no");
  }
  if (c.privateKey) {
    writeFileSync(join(dir, "key"), c.privateKey.endsWith("\n") ? c.privateKey : `${c.privateKey}\n`, { mode: 0o600 });
    options.push("-i", join(dir, "key"), "-o", "IdentitiesOnly=yes");
  }
  const secret = c.privateKeyPassword ?? c.password;
  if (secret) {
    // OpenSSH asks SSH_ASKPASS for passwords and key passphrases when forced to.
    writeFileSync(join(dir, "secret"), secret, { mode: 0o600 });
    writeFileSync(join(dir, "askpass"), `#!/bin/sh\ncat ${shellQuote(join(dir, "secret"))}\n`, { mode: 0o700 });
    Object.assign(env, { SSH_ASKPASS: join(dir, "askpass"), SSH_ASKPASS_REQUIRE: "force", DISPLAY: env.DISPLAY ?? ":0" });
  }
  if (c.agentSocketPath) env.SSH_AUTH_SOCK = c.agentSocketPath;
  const target = `${c.user ?? "root"}@${c.host}`;
  const withPort = (flag) => options.map((o) => (o === "-P_PORT" ? flag : o));
  /**
   * Retry up to dialErrorLimit times when the host could not be reached, as upstream does. ssh exits
   * 255 for that, but also when the host refused us (wrong host key, key not accepted: retrying will
   * not help) and when the remote command itself exits 255 (it must not run again): so only 255 with
   * a connection error is retried.
   */
  const dialError = /ssh: connect to host|Connection (refused|timed out|reset|closed)|kex_exchange_identification|No route to host|Network is unreachable|Could not resolve hostname/;
  const retrying = async (run) => {
    const limit = c.dialErrorLimit ?? 10;
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (e) {
        if (e.code !== 255 || !dialError.test(e.stderr ?? "") || (limit > 0 && attempt >= limit)) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  return {
    run: (command, stdin, what) => retrying(() => execute("ssh", [...withPort("-p"), target, command], { env, stdin, what })),
    copy: (localPath, remotePath, what) => retrying(() => execute("scp", [...withPort("-P"), "-r", "-p", localPath, `${target}:${remotePath}`], { env, what })),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function previousOutputEnv(state) {
  if (state.addPreviousOutputInEnv === false) return {};
  return { PULUMI_COMMAND_STDOUT: reveal(state.stdout) ?? "", PULUMI_COMMAND_STDERR: reveal(state.stderr) ?? "" };
}

/** Runs one Command step (create/update/delete) locally or over ssh; returns stdout and stderr. */
async function runCommandStep(type, command, inputs, extraEnv = {}) {
  if (command === undefined) return { stdout: "", stderr: "" };
  const plain = reveal(inputs);
  const environment = { ...(plain.environment ?? {}), ...extraEnv };
  const what = `running ${JSON.stringify(command)}`;
  if (type === "command:remote:Command") {
    const session = sshSession(inputs.connection);
    try {
      // Environment goes in front of the command: sshd accepts few variables through SendEnv.
      const exports = Object.entries(environment).map(([k, v]) => `export ${k}=${shellQuote(v)}; `).join("");
      const { stdout, stderr } = await session.run(exports + command, plain.stdin ?? "", what);
      return { stdout, stderr };
    } finally {
      session.cleanup();
    }
  }
  const [program, ...args] = plain.interpreter?.length ? plain.interpreter : ["/bin/sh", "-c"];
  const { stdout, stderr } = await execute(program, [...args, command], {
    cwd: plain.dir || process.cwd(),
    env: { ...process.env, ...environment },
    stdin: plain.stdin ?? "",
    what,
  });
  return { stdout, stderr };
}

/** Copies a CopyToRemote source or a CopyFile localPath to the remote host. */
async function copyToRemote(type, inputs) {
  const plain = reveal(inputs);
  const session = sshSession(inputs.connection);
  const staging = mkdtempSync(join(tmpdir(), "pulumi-command-copy-"));
  try {
    let localPath = plain.localPath;
    if (type === "command:remote:CopyToRemote") {
      const source = plain.source ?? {};
      if (source.text !== undefined) {
        localPath = join(staging, "content");
        writeFileSync(localPath, source.text);
      } else {
        localPath = source.path;
      }
    }
    await session.copy(localPath, plain.remotePath, `copying ${localPath} to ${plain.remotePath}`);
  } finally {
    session.cleanup();
    rmSync(staging, { recursive: true, force: true });
  }
}

function checkFailures(type, news) {
  const failures = [];
  const refuse = (property, reason) => failures.push({ property, reason });
  const known = ["command:local:Command", "command:remote:Command", "command:remote:CopyToRemote", "command:remote:CopyFile"];
  if (!known.includes(type)) refuse("", `${type} is not implemented by this command provider (only ${known.join(", ")})`);
  for (const k of ["assetPaths", "archivePaths"]) if (news[k] !== undefined) refuse(k, `${k} is not implemented by this command provider`);
  const connection = reveal(news.connection);
  if (connection?.proxy) refuse("connection.proxy", "proxy connections are not implemented by this command provider");
  const source = reveal(news.source);
  if (source && source.path === undefined && source.text === undefined) {
    refuse("source", "only FileAsset, StringAsset and FileArchive (a directory) sources are implemented by this command provider");
  }
  return failures;
}

const isCopy = (type) => type === "command:remote:CopyToRemote" || type === "command:remote:CopyFile";

const provider = {
  version: PLUGIN_VERSION,

  async check(urn, _olds, news) {
    return { inputs: news, failures: checkFailures(typeOf(urn), news) };
  },

  async diff(_id, urn, olds, news) {
    const keys = isCopy(typeOf(urn)) ? ["source", "localPath", "remotePath", "triggers", "connection"] : COMMAND_INPUTS;
    const changed = keys.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
    if (changed.length === 0) return { changes: false };
    return { changes: true, replaces: isCopy(typeOf(urn)) || news.update === undefined ? changed : [] };
  },

  async create(urn, inputs) {
    const type = typeOf(urn);
    const id = `${urn.split("::")[3]}-${randomBytes(4).toString("hex")}`;
    if (isCopy(type)) {
      await copyToRemote(type, inputs);
      return { id, outs: inputs };
    }
    return { id, outs: { ...inputs, ...(await runCommandStep(type, reveal(inputs.create), inputs)) } };
  },

  async update(_id, urn, olds, news) {
    const command = reveal(news.update ?? news.create);
    return { outs: { ...news, ...(await runCommandStep(typeOf(urn), command, news, previousOutputEnv(olds))) } };
  },

  async delete(_id, urn, props) {
    if (isCopy(typeOf(urn))) return;
    await runCommandStep(typeOf(urn), reveal(props.delete), props, previousOutputEnv(props));
  },

  async invoke(token, inputs) {
    if (token !== "command:local:run") {
      return { failures: [{ property: "", reason: `${token} is not implemented by this command provider (only command:local:run)` }] };
    }
    return { outputs: { ...inputs, ...(await runCommandStep("command:local:Command", reveal(inputs.command), inputs)) } };
  },
};

pulumiRequire()("./provider").main(provider, process.argv.slice(2));
