import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { spawn } from "node:child_process";
(async () => {
  const n2 = spawn(process.execPath, ["dist/bin/glusterfsd.js", "-f", "/tmp/afrseed/n2.vol"], { stdio: "ignore" });
  const g = Graph.fromFile("/tmp/afrseed/n1.vol", { log: silentLogger() });
  await g.start();
  await new Promise((r) => setTimeout(r, 1500));
  for (const x of [...g.volumes.values()].reverse()) {
    const t = Date.now(); console.log("stopping", x.name);
    await x.stop();
    console.log(x.name, Date.now() - t, "ms");
  }
  n2.kill("SIGKILL");
})();
