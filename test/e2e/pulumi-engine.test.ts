// The real Pulumi engine, offline: scripts/pulumi-engine.sh provides the CLI and its plugins, and
// throwaway Node.js programs using @pulumi/command go through up, up (no changes) and destroy against
// a local file backend.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repoRoot = resolve(__dirname, "../..");
// A cold build of the CLI from Go modules takes minutes; CI builds it before the tests run.
const ENGINE_TIMEOUT_MS = 15 * 60_000;
const PULUMI_TIMEOUT_MS = 3 * 60_000;
const TEST_TIMEOUT_MS = ENGINE_TIMEOUT_MS + 6 * PULUMI_TIMEOUT_MS;

let binDirOnce: string | undefined;
function engineBinDir(): string {
  if (binDirOnce) return binDirOnce;
  const r = spawnSync("bash", [join(repoRoot, "scripts/pulumi-engine.sh")], { encoding: "utf8", timeout: ENGINE_TIMEOUT_MS });
  assert.equal(r.status, 0, `scripts/pulumi-engine.sh failed:\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  binDirOnce = lines[lines.length - 1];
  return binDirOnce;
}

/** The offline settings of scripts/pulumi-env.sh, with the state and passphrase local to one test. */
function offlineEnv(binDir: string, stateDir: string): NodeJS.ProcessEnv {
  mkdirSync(stateDir, { recursive: true }); // also the language host's TMPDIR (it leaves a pipes dir per run)
  const r = spawnSync("bash", ["-c", `. "${join(repoRoot, "scripts/pulumi-env.sh")}" && env -0`], {
    encoding: "utf8",
    env: { ...process.env, PULUMI_BACKEND_URL: `file://${stateDir}`, PULUMI_CONFIG_PASSPHRASE: "engine-test", TMPDIR: stateDir },
  });
  assert.equal(r.status, 0, r.stderr);
  const env = Object.fromEntries(r.stdout.split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return { ...env, PATH: `${binDir}:${env.PATH}` };
}

/** A Pulumi project in a temp dir (Pulumi.yaml + index.js, the repo's node_modules) with a stack "test". */
function throwawayProject(indexJs: string) {
  const dir = mkdtempSync(join(tmpdir(), "pulumi-engine-"));
  const env = offlineEnv(engineBinDir(), join(dir, "state"));
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"));
  writeFileSync(join(dir, "Pulumi.yaml"), "name: engine-check\nruntime: nodejs\n");
  writeFileSync(join(dir, "index.js"), indexJs);
  const pulumi = (...args: string[]): SpawnSyncReturns<string> => {
    const r = spawnSync("pulumi", [...args, "--non-interactive"], { cwd: dir, env, encoding: "utf8", timeout: PULUMI_TIMEOUT_MS });
    assert.equal(r.status, 0, `pulumi ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  pulumi("stack", "init", "test");
  return { dir, pulumi, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("a local.Command program goes through up, up without changes and destroy offline", { timeout: TEST_TIMEOUT_MS }, () => {
  const work = mkdtempSync(join(tmpdir(), "pulumi-engine-local-"));
  const marker = join(work, "marker.txt");
  const project = throwawayProject(`const command = require("@pulumi/command");
const cmd = new command.local.Command("write-marker", {
  create: ${JSON.stringify(`echo ran >> '${marker}' && echo hello-from-command`)},
  delete: ${JSON.stringify(`rm '${marker}'`)},
});
exports.stdout = cmd.stdout;
`);
  try {
    project.pulumi("up", "--yes");
    assert.equal(readFileSync(marker, "utf8"), "ran\n", "the create command ran once");
    assert.equal(project.pulumi("stack", "output", "stdout").stdout.trim(), "hello-from-command");

    const second = project.pulumi("up", "--yes", "--expect-no-changes");
    assert.match(second.stdout, /2 unchanged/);
    assert.equal(readFileSync(marker, "utf8"), "ran\n", "an unchanged command does not run again");

    project.pulumi("destroy", "--yes");
    assert.equal(existsSync(marker), false, "the delete command removed the marker");
    project.pulumi("stack", "rm", "--yes", "test");
  } finally {
    project.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  await new Promise((ok) => server.close(ok));
  return port;
}

/** A throwaway sshd on 127.0.0.1 that lets root in with a fresh key pair. */
async function startSshd(dir: string) {
  const keygen = (file: string) => assert.equal(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]).status, 0);
  keygen(join(dir, "host_key"));
  keygen(join(dir, "client_key"));
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "client_key.pub")));
  mkdirSync("/run/sshd", { recursive: true }); // sshd's privilege separation dir
  const port = await freeLoopbackPort();
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, "host_key")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "PidFile none",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  const sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  sshd.stderr.on("data", (d) => (log += d));
  for (let i = 0; i < 50; i++) {
    const probe = spawnSync("ssh-keyscan", ["-p", String(port), "127.0.0.1"], { encoding: "utf8", timeout: 5000 });
    if (probe.stdout.includes("ssh-ed25519")) break;
    assert.equal(sshd.exitCode, null, `sshd exited:\n${log}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return { port, privateKey: readFileSync(join(dir, "client_key"), "utf8"), stop: () => sshd.kill() };
}

test("remote.Command and remote.CopyToRemote work over ssh to a local sshd", { timeout: TEST_TIMEOUT_MS }, async () => {
  const work = mkdtempSync(join(tmpdir(), "pulumi-engine-remote-"));
  const sshd = await startSshd(work);
  const remoteDir = join(work, "remote");
  const source = join(work, "payload.txt");
  writeFileSync(source, "payload\n");
  const connection = { host: "127.0.0.1", port: sshd.port, user: "root", privateKey: sshd.privateKey };
  const project = throwawayProject(`const command = require("@pulumi/command");
const pulumi = require("@pulumi/pulumi");
const connection = ${JSON.stringify(connection)};
const dir = new command.remote.Command("make-dir", {
  connection,
  create: ${JSON.stringify(`mkdir -p '${remoteDir}' && echo "$GREETING"`)},
  delete: ${JSON.stringify(`rm -r '${remoteDir}'`)},
  environment: { GREETING: "hello over ssh" },
});
const copy = new command.remote.CopyToRemote("copy", {
  connection,
  source: new pulumi.asset.FileAsset(${JSON.stringify(source)}),
  remotePath: ${JSON.stringify(join(remoteDir, "copied.txt"))},
}, { dependsOn: dir });
exports.greeting = dir.stdout;
`);
  try {
    project.pulumi("up", "--yes");
    assert.equal(readFileSync(join(remoteDir, "copied.txt"), "utf8"), "payload\n", "the file was copied over scp");
    assert.equal(project.pulumi("stack", "output", "greeting").stdout.trim(), "hello over ssh");

    project.pulumi("up", "--yes", "--expect-no-changes");

    project.pulumi("destroy", "--yes");
    assert.equal(existsSync(remoteDir), false, "the remote delete command ran");
  } finally {
    project.cleanup();
    sshd.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
