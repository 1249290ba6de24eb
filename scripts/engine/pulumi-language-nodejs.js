#!/usr/bin/env node
// The Node.js language host that `pulumi` starts for `runtime: nodejs` projects.
//
// The fallback: scripts/pulumi-engine.sh uses the upstream Go host, built from sdk/v3 v3.68.0 (the
// last release that has it inside sdk/v3; its own module, sdk/nodejs/cmd/pulumi-language-nodejs, is
// not served by the Go module proxy this project can reach), and installs this one only when that
// build fails. @pulumi/pulumi itself contains a complete LanguageRuntime server (the one its
// Automation API uses for inline programs), so this host serves that, with the project's entry point
// as the program. The engine, resource monitor, state and providers are all the real ones.
//
// Protocol (same as any Pulumi plugin): started as `pulumi-language-nodejs [-flags] ENGINE_ADDRESS`,
// print the gRPC port on stdout, serve until killed.
"use strict";
const path = require("node:path");
const fs = require("node:fs");
const { createRequire } = require("node:module");

/**
 * A require() rooted at the project's @pulumi/pulumi, so the program and this host share one copy of
 * the SDK (its runtime settings are module state). PULUMI_ENGINE_NODE_MODULES is the fallback.
 */
function pulumiRequireFor(projectDir) {
  const fallback = process.env.PULUMI_ENGINE_NODE_MODULES;
  const paths = [projectDir, process.cwd(), ...(fallback ? [fallback] : [])];
  return createRequire(require.resolve("@pulumi/pulumi/package.json", { paths }));
}

function engineAddressFromArgv(argv) {
  const positional = argv.filter((a) => !a.startsWith("-"));
  return positional[positional.length - 1] ?? "";
}

/** The program function the SDK's LanguageServer runs: require the entry point, call it if it is one. */
function programFor(programDir, entryPoint) {
  const entry = path.resolve(programDir, entryPoint || ".");
  return async () => {
    if (/\.[cm]?ts$/.test(entry) || fs.existsSync(path.join(entry, "index.ts"))) {
      // TypeScript entry points: use the project's tsx (the upstream host would use ts-node).
      createRequire(path.join(programDir, "noop.js"))("tsx/cjs/api").register();
    }
    const exported = require(entry);
    const main = typeof exported === "function" ? exported : typeof exported?.default === "function" ? exported.default : undefined;
    return main ? await main() : exported;
  };
}

function main() {
  const engineAddress = engineAddressFromArgv(process.argv.slice(2));
  const projectDir = process.cwd();
  const pulumiRequire = pulumiRequireFor(projectDir);
  const grpc = pulumiRequire("@grpc/grpc-js");
  const langrpc = pulumiRequire("./proto/language_grpc_pb");
  const langproto = pulumiRequire("./proto/language_pb");
  const plugproto = pulumiRequire("./proto/plugin_pb");
  const { LanguageServer } = pulumiRequire("./automation/server");
  const pulumiVersion = pulumiRequire("./package.json").version;

  const service = {
    getPluginInfo(_call, callback) {
      const info = new plugproto.PluginInfo();
      info.setVersion(pulumiVersion);
      callback(null, info);
    },
    getRequiredPlugins(_call, callback) {
      // Providers are loaded on first use (a plugin on PATH or installed with `pulumi plugin install`).
      const resp = new langproto.GetRequiredPluginsResponse();
      resp.setPluginsList([]);
      callback(null, resp);
    },
    getRequiredPackages(_call, callback) {
      const resp = new langproto.GetRequiredPackagesResponse();
      resp.setPackagesList([]);
      callback(null, resp);
    },
    run(call, callback) {
      const req = call.request;
      const info = req.getInfo?.();
      const programDir = info?.getProgramDirectory() || req.getPwd() || projectDir;
      const entryPoint = info?.getEntryPoint() || req.getProgram() || ".";
      // The SDK's server reads the engine address from args[0], as the CLI's --client mode passes it.
      req.setArgsList([engineAddress]);
      new LanguageServer(programFor(programDir, entryPoint)).run(call, callback);
    },
  };

  const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
  server.addService(langrpc.LanguageRuntimeService, service);
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      console.error(`pulumi-language-nodejs: cannot listen on 127.0.0.1: ${err.message}`);
      process.exit(1);
    }
    process.stdout.write(`${port}\n`);
  });
}

main();
