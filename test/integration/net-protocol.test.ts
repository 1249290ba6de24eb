// protocol/client <-> protocol/server between real processes on 127.0.0.2 / 127.0.0.3 (ports 24100-24139):
// auth, failover, a silent peer (iptables DROP), TLS with client certificates, lock release on disconnect.
import { after, afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { FopError } from "../../runtime/core/errors";
import { Graph } from "../../runtime/core/graph";
import { silentLogger } from "../../runtime/core/log";
import { Fd, type CallCtx } from "../../runtime/core/types";
import { Xlator, type XlatorEvent } from "../../runtime/core/xlator";
import { decodeClientMsg, encodeFrame, FrameDecoder, PROTOCOL_VERSION } from "../../runtime/protocol";
import { LOCKS_AFTER_XDATA, LOCKS_FIRST_XDATA } from "../../runtime/xlators/features/posix-locks/locks-first";
import { ClientConnection } from "../../runtime/xlators/protocol/client/connection";
import {
  clientVolfile, dropTraffic, spawnHelper, startBrickServer, stopAllServers, tempDir, waitForLine,
} from "../helpers/servers";
import { statedumpOf } from "../helpers/mount";

const CTX: CallCtx = { uid: 0, gid: 0, pid: process.pid, lkOwner: "t", client: "local" };
const graphs: Graph[] = [];

/** A client graph in this process, with a parent that records child-up / child-down. */
async function connectClient(volfile: string): Promise<{ client: Xlator; events: XlatorEvent[]; graph: Graph }> {
  const graph = Graph.fromText(volfile, "client.vol", { log: silentLogger() });
  graphs.push(graph);
  const events: XlatorEvent[] = [];
  const recorder = new Xlator({ name: "recorder", type: "test/recorder", options: {}, children: [graph.top], log: silentLogger(), graph: new Map() });
  recorder.notify = (e) => void events.push(e);
  await graph.start();
  return { client: graph.top, events, graph };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (err) {
    assert.ok(err instanceof FopError, `a FopError, got ${String(err)}`);
    return err.code;
  }
}

afterEach(async () => {
  await Promise.all(graphs.splice(0).map((g) => g.stop()));
});
after(stopAllServers);

describe("auth.ip", () => {
  test("an allowed address attaches and works; a rejected one is refused with EACCES on both sides", async () => {
    const srv = await startBrickServer({
      host: "127.0.0.2", port: 24100,
      allow: { locks: "127.0.0.1,127.0.0.5,127.0.0.6" }, reject: { locks: "127.0.0.6" },
    });
    const ok = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24100, extra: ["bind-address 127.0.0.5"] }));
    assert.equal(ok.client.isUp(), true);
    assert.deepEqual(ok.events, ["child-up"]);
    assert.equal((await ok.client.stat(CTX, { path: "/" })).mode & 0o170000, 0o040000);

    const notAllowed = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24100, extra: ["bind-address 127.0.0.4"] }));
    const rejected = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24100, extra: ["bind-address 127.0.0.6"] }));
    for (const c of [notAllowed, rejected]) {
      assert.equal(c.client.isUp(), false);
      assert.deepEqual(c.events, []);
      assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "EACCES");
      assert.equal((c.client.dump() as { lastFailure: { code: string } }).lastFailure.code, "EACCES");
    }
    const log = srv.log();
    assert.match(log, /handshake refused.*127\.0\.0\.4|127\.0\.0\.4.*handshake refused/);
    assert.match(log, /reject rule \\"127\.0\.0\.6\\"/);
  });

  test("any volume of the server's graph can be requested, but one without an allow rule is refused", async () => {
    await startBrickServer({ host: "127.0.0.2", port: 24101, allow: { locks: "127.0.0.*" } });
    const inner = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24101, volume: "ds" }));
    assert.equal(inner.client.isUp(), false);
    assert.equal(await codeOf(inner.client.stat(CTX, { path: "/" })), "EACCES");
    const missing = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24101, volume: "no-such-volume" }));
    assert.equal(missing.client.isUp(), false);
    assert.equal(await codeOf(missing.client.stat(CTX, { path: "/" })), "ENOTCONN");
    assert.equal((missing.client.dump() as { lastFailure: { code: string } }).lastFailure.code, "ENOENT");
  });
});

describe("failover and reconnect", () => {
  test("when the connected server is killed the client moves to the next address", async () => {
    const a = await startBrickServer({ host: "127.0.0.2", port: 24110, allow: { locks: "127.0.0.1" } });
    await startBrickServer({ host: "127.0.0.3", port: 24110, allow: { locks: "127.0.0.1" } });
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2,127.0.0.3", port: 24110, timeout: 3 }));
    assert.equal((c.client.dump() as { address: string }).address, "127.0.0.2:24110");
    await a.kill();
    const ms = await until("reconnected to 127.0.0.3", () => (c.client.dump() as { address: string }).address === "127.0.0.3:24110" && c.client.isUp(), 5000);
    assert.ok(ms < 5000);
    assert.deepEqual(c.events, ["child-up", "child-down", "child-up"]);
    assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "OK");
  });

  test("a fop issued while the only server is down waits for it to come back, on the reopened fd", async (t) => {
    const dir = tempDir();
    const brick = join(dir, "brick");
    let srv = await startBrickServer({ host: "127.0.0.2", port: 24111, brick });
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24111, timeout: 8 }));
    const fd = new Fd("/reopen.txt", 0o2 | 0o100);
    await c.client.create(CTX, { path: "/reopen.txt" }, fd.flags, 0o644, fd);
    assert.equal(await c.client.write(CTX, fd, Buffer.from("before"), 0), 6);
    await srv.kill();
    await until("child-down", () => c.events.includes("child-down"), 3000);
    const t0 = Date.now();
    const write = c.client.write(CTX, fd, Buffer.from("after"), 6);
    srv = await startBrickServer({ host: "127.0.0.2", port: 24111, brick });
    assert.equal(await write, 5);
    t.diagnostic(`write waited ${Date.now() - t0} ms for the server to return`);
    assert.deepEqual(c.events, ["child-up", "child-down", "child-up"]);
    assert.equal((await c.client.read(CTX, fd, 100, 0)).toString(), "beforeafter");
    await c.client.release(CTX, fd);
  });

  test("rchecksum is computed on the server: the sha256 of the range, short at the end of the file", async () => {
    const srv = await startBrickServer({ host: "127.0.0.2", port: 24118 });
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24118 }));
    const fd = new Fd("/sum.bin", 0o2 | 0o100);
    await c.client.create(CTX, { path: "/sum.bin" }, fd.flags, 0o644, fd);
    const data = Buffer.from("0123456789".repeat(1000));
    await c.client.write(CTX, fd, data, 0);
    const sha = (b: Buffer) => createHash("sha256").update(b).digest();
    assert.deepEqual(await c.client.rchecksum(CTX, fd, 100, 4096), sha(data.subarray(100, 4196)));
    assert.deepEqual(await c.client.rchecksum(CTX, fd, 8000, 4096), sha(data.subarray(8000)), "short at the end");
    await assert.rejects(c.client.rchecksum(CTX, fd, -1, 10), { code: "EINVAL" });
    await c.client.release(CTX, fd);
  });

  test("with no server to return to, fops wait transport-timeout, then fail with ENOTCONN; later ones fail at once", async () => {
    const srv = await startBrickServer({ host: "127.0.0.2", port: 24112 });
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24112, timeout: 2 }));
    await srv.kill();
    await until("child-down", () => c.events.includes("child-down"), 3000);
    const t0 = Date.now();
    assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "ENOTCONN");
    const waited = Date.now() - t0;
    assert.ok(waited >= 1000 && waited <= 2500, `waited ${waited} ms (transport-timeout 2 s, counted from the loss, noticed a moment before)`);
    const t1 = Date.now();
    assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "ENOTCONN");
    assert.ok(Date.now() - t1 < 200, "an outage older than transport-timeout fails at once");
  });

  test("killing the connected server of a two-address client: reads in flight and fops issued meanwhile succeed on the other", async (t) => {
    // Both servers export the same directory, so the second address serves the same file.
    const brick = join(tempDir(), "brick");
    const a = await startBrickServer({ host: "127.0.0.2", port: 24113, brick });
    await startBrickServer({ host: "127.0.0.3", port: 24113, brick });
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2,127.0.0.3", port: 24113, timeout: 5 }));
    const data = Buffer.alloc(256 << 10, 3);
    const fd = new Fd("/shared.bin", 0o2 | 0o100);
    await c.client.create(CTX, { path: "/shared.bin" }, fd.flags, 0o644, fd);
    assert.equal(await c.client.write(CTX, fd, data, 0), data.length);
    let worst = 0;
    let ops = 0;
    const timed = async <T>(p: () => Promise<T>): Promise<T> => {
      const t0 = Date.now();
      const v = await p();
      worst = Math.max(worst, Date.now() - t0);
      ops++;
      return v;
    };
    let stop = false;
    const worker = async () => {
      while (!stop) {
        await timed(() => c.client.stat(CTX, { path: "/shared.bin" }));
        assert.ok((await timed(() => c.client.read(CTX, fd, data.length, 0))).equals(data));
        await timed(() => c.client.lookup(CTX, { path: "/" }));
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await new Promise((r) => setTimeout(r, 300));
    await a.kill();
    await until("on the second address", () => (c.client.dump() as { address: string }).address === "127.0.0.3:24113" && c.client.isUp(), 5000);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(workers);
    t.diagnostic(`${ops} fops, worst ${worst} ms`);
    assert.ok(worst < 2000, `worst stall ${worst} ms`);
    assert.deepEqual(c.events, ["child-up", "child-down", "child-up"]);
    await c.client.release(CTX, fd);
  });

  test("a modifying fop in flight when its server dies fails with ENOTCONN instead of being sent again", async () => {
    const brick = join(tempDir(), "brick");
    const a = await startBrickServer({ host: "127.0.0.2", port: 24114, brick });
    await startBrickServer({ host: "127.0.0.3", port: 24114, brick });
    const dir = tempDir();
    const vol = join(dir, "client.vol");
    writeFileSync(vol, clientVolfile({ hosts: "127.0.0.2", port: 24114 }));
    const holder = spawnHelper(["lock-holder", vol, "/held"]);
    await waitForLine(holder, /^locked$/);
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2,127.0.0.3", port: 24114, timeout: 5 }));
    const fd = new Fd("/held", 0o2);
    await c.client.open(CTX, { path: "/held" }, fd.flags, fd);
    // A blocking lock waits on the server behind the holder's: it is in flight when the server dies.
    const blocked = codeOf(c.client.lk(CTX, fd, "setlkw", { type: "wr", start: 0, len: 0, pid: process.pid }));
    // (killed before it read the request, the server would leave it provably unread: sent again, granted)
    await until("the request waiting on the first server", async () => JSON.stringify(await statedumpOf({ pid: a.child.pid! })).includes('"waiting":[{'), 10_000);
    await a.kill();
    assert.equal(await blocked, "ENOTCONN");
    await until("on the second address", () => c.client.isUp(), 5000);
    assert.equal(await codeOf(c.client.fstat(CTX, fd)), "OK", "the fd was reopened on the second server");
    await c.client.release(CTX, fd);
  });

  /**
   * A server that handshakes, then either stops reading (`unread`: what it is sent stays in its kernel
   * buffer) or reads; `die()` closes it like a killed process would.
   */
  async function fakeServer(host: string, port: number, mode: "unread" | "read"): Promise<{ die(): void; requests: string[]; close(): Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const requests: string[] = [];
    const srv = net.createServer((sock) => {
      sockets.add(sock);
      const dec = new FrameDecoder(1 << 20);
      let hello = false;
      sock.on("error", () => undefined);
      sock.on("data", (chunk: Buffer) => {
        for (const f of dec.push(chunk)) {
          const m = decodeClientMsg(f.meta, f.payload);
          if (!hello && m.t === "hello") {
            hello = true;
            sock.write(Buffer.concat(encodeFrame({ t: "hello-ok", version: PROTOCOL_VERSION, client: "fake" })));
            // pause() alone still drains the kernel buffer into Node's; stop reading at the handle.
            if (mode === "unread") (sock as unknown as { _handle: { readStop(): void } })._handle.readStop();
          } else if (m.t === "req") requests.push(m.op);
        }
      });
    });
    await new Promise<void>((r) => srv.listen(port, host, () => r()));
    return {
      requests,
      die: () => {
        srv.close();
        for (const s of sockets) s.destroy();
      },
      close: () => new Promise<void>((r) => srv.close(() => r())),
    };
  }

  /** A client of two addresses attached to the first, a fake server, and a real brick server at the second. */
  async function fakeThenReal(t: { after: (fn: () => void) => void }, port: number, mode: "unread" | "read") {
    const brick = join(tempDir(), "brick");
    await startBrickServer({ host: "127.0.0.3", port, brick });
    const fake = await fakeServer("127.0.0.2", port, mode);
    t.after(() => fake.die());
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2,127.0.0.3", port, timeout: 5 }));
    assert.equal((c.client.dump() as { address: string }).address, `127.0.0.2:${port}`);
    return { brick, fake, c };
  }

  test("a modifying fop the dead server never read (the connection was reset) is sent again on the next address", async (t) => {
    const { brick, fake, c } = await fakeThenReal(t, 24116, "unread");
    const mkdir = codeOf(c.client.mkdir(CTX, { path: "/resent" }, 0o755));
    await new Promise((r) => setTimeout(r, 200));
    fake.die();
    assert.equal(await mkdir, "OK");
    assert.ok(existsSync(join(brick, "resent")), "made on the second server");
  });

  test("a modifying fop written after the dead server's close had reached this host (before the client read it) is sent again on the next address", async (t) => {
    const { brick, fake, c } = await fakeThenReal(t, 24121, "read");
    // The server closes cleanly (it had read everything), and in the same turn, before this process
    // reads that close, the mkdir is written: it reaches a closed socket, which answers with a reset.
    fake.die();
    const mkdir = codeOf(c.client.mkdir(CTX, { path: "/after-close" }, 0o755));
    assert.equal(await mkdir, "OK");
    assert.deepEqual(fake.requests.filter((op) => op === "mkdir"), [], "the dead server never read it");
    assert.ok(existsSync(join(brick, "after-close")), "made on the second server");
  });

  test("a server that closes the connection during the handshake is reported at once (ECONNRESET), not after the handshake's timeout", async () => {
    // (it reads the hello, then closes: the client's end stays open after a server's close, so the
    // handshake must listen for the close itself)
    const srv = net.createServer((sock) => sock.once("data", () => sock.destroy()));
    await new Promise<void>((r) => srv.listen(24122, "127.0.0.2", () => r()));
    try {
      const t0 = Date.now();
      await assert.rejects(
        ClientConnection.connect({ host: "127.0.0.2", port: 24122, volume: "brick", timeout: 10, pingInterval: 5, maxFrame: 1 << 20, label: "test", xlator: "test" }),
        (err: FopError) => err.code === "ECONNRESET" && /closed the connection during the handshake/.test(err.message),
      );
      assert.ok(Date.now() - t0 < 2000, `reported after ${Date.now() - t0} ms`);
    } finally {
      srv.close();
    }
  });

  test("a server that keeps failing is tried again at least every 3 s (GlusterFS's reconnect interval), not after longer and longer backoffs", async () => {
    // Each attempt reaches the server, which closes it during the handshake: every round fails.
    const attempts: number[] = [];
    const srv = net.createServer((sock) => {
      attempts.push(Date.now());
      sock.destroy();
    });
    await new Promise<void>((r) => srv.listen(24123, "127.0.0.2", () => r()));
    try {
      await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24123, timeout: 2 }));
      // Fibonacci steps 0.5, 0.5, 1, 1.5, 2.5, then 3 s: the gaps grow to 3 s and stay there (the 7th
      // attempt comes 9 s after the first; the old schedule's 4 s step came before it).
      await until("7 attempts", () => attempts.length >= 7, 30_000);
      const gaps = attempts.slice(1).map((at, i) => at - attempts[i]!);
      assert.ok(Math.max(...gaps) < 3500, `the longest gap between attempts: ${Math.max(...gaps)} ms (gaps ${gaps.join(", ")})`);
    } finally {
      srv.close();
    }
  });

  test("a fop added after the first protocol version is not sent to a server that does not list it (ENOSYS)", async (t) => {
    const fake = await fakeServer("127.0.0.2", 24119, "read");
    t.after(() => fake.die());
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24119, timeout: 5 }));
    await assert.rejects(c.client.rchecksum(CTX, new Fd("/f", 0), 0, 10), { code: "ENOSYS" });
    const stat = c.client.statfs(CTX, { path: "/" }).catch(() => undefined);
    await until("the fake server read the statfs", () => fake.requests.includes("statfs"), 2000);
    assert.deepEqual(fake.requests, ["statfs"], "rchecksum never reached it; the connection still carries fops");
    fake.die();
    await stat;
  });

  test("a modifying fop the dead server had read fails with ENOTCONN and is not sent again", async (t) => {
    const { brick, fake, c } = await fakeThenReal(t, 24117, "read");
    const mkdir = codeOf(c.client.mkdir(CTX, { path: "/maybe" }, 0o755));
    await until("the fake server read the mkdir", () => fake.requests.includes("mkdir"), 2000);
    fake.die();
    assert.equal(await mkdir, "ENOTCONN");
    await until("on the second address", () => c.client.isUp(), 5000);
    assert.equal(existsSync(join(brick, "maybe")), false, "not sent again");
  });

  test("under cluster/afr a down child fails fops at once (AFR has the other copy)", async () => {
    const a = await startBrickServer({ host: "127.0.0.2", port: 24115 });
    await startBrickServer({ host: "127.0.0.3", port: 24115 });
    const volfile = [
      clientVolfile({ hosts: "127.0.0.2", port: 24115, timeout: 5 }).replace("volume client", "volume c1"),
      clientVolfile({ hosts: "127.0.0.3", port: 24115, timeout: 5 }).replace("volume client", "volume c2"),
      "volume afr", "  type cluster/afr", "  subvolumes c1 c2", "end-volume", "",
    ].join("\n");
    const graph = Graph.fromText(volfile, "afr.vol", { log: silentLogger() });
    graphs.push(graph);
    await graph.start();
    const c1 = graph.volumes.get("c1")!;
    await a.kill();
    await until("c1 down", () => !c1.isUp(), 3000);
    const t0 = Date.now();
    assert.equal(await codeOf(c1.stat(CTX, { path: "/" })), "ENOTCONN");
    assert.ok(Date.now() - t0 < 200, "no wait under cluster/afr");
    const fd = new Fd("/afr.txt", 0o2 | 0o100);
    const t1 = Date.now();
    await graph.top.create(CTX, { path: "/afr.txt" }, fd.flags, 0o644, fd);
    assert.equal(await graph.top.write(CTX, fd, Buffer.from("x"), 0), 1);
    await graph.top.release(CTX, fd);
    assert.ok(Date.now() - t1 < 1000, `AFR write took ${Date.now() - t1} ms with a child down`);
  });
});

describe("silent peer", () => {
  test("a peer whose packets are dropped fails pending fops with ENOTCONN within transport-timeout + 1 s", async () => {
    await startBrickServer({ host: "127.0.0.3", port: 24120 });
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.3", port: 24120, timeout: 2 }));
    assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "OK");
    const rule = dropTraffic("127.0.0.3", 24120);
    try {
      const t0 = Date.now();
      assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "ENOTCONN");
      const elapsed = Date.now() - t0;
      assert.ok(elapsed <= 3000, `stalled ${elapsed} ms (transport-timeout 2 s)`);
      assert.equal(c.client.isUp(), false);
      assert.ok(c.events.includes("child-down"));
      // A fop issued now waits for a reconnect until transport-timeout after the loss, no longer.
      const t1 = Date.now();
      assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "ENOTCONN");
      assert.ok(Date.now() - t1 <= 2500, `waited ${Date.now() - t1} ms`);
      const t2 = Date.now();
      assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "ENOTCONN");
      assert.ok(Date.now() - t2 < 200, "an outage older than transport-timeout fails at once");
    } finally {
      rule.remove();
    }
    await until("reconnected after the partition healed", () => c.client.isUp(), 10000);
    assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "OK");
  });
});

describe("TLS", () => {
  function makeCerts(dir: string): void {
    const sh = (cmd: string) => execFileSync("sh", ["-c", cmd], { cwd: dir, stdio: "pipe" });
    for (const ca of ["ca", "other-ca"]) {
      sh(`openssl req -x509 -newkey rsa:2048 -nodes -keyout ${ca}.key -out ${ca}.pem -days 2 -subj /CN=${ca}`);
    }
    for (const [name, ca] of [["server", "ca"], ["client", "ca"], ["rogue", "other-ca"]]) {
      sh(`openssl req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj /CN=${name}`);
      sh(`openssl x509 -req -in ${name}.csr -CA ${ca}.pem -CAkey ${ca}.key -CAcreateserial -out ${name}.pem -days 2`);
    }
  }

  test("ssl on: a client with a certificate from the cluster CA works; without one, or from another CA, it cannot attach", async () => {
    const dir = tempDir("gha-tls-");
    makeCerts(dir);
    const p = (f: string) => join(dir, f);
    await startBrickServer({
      host: "127.0.0.2", port: 24130,
      serverOptions: ["ssl on", `ssl-cert ${p("server.pem")}`, `ssl-key ${p("server.key")}`, `ssl-ca ${p("ca.pem")}`],
    });
    const good = await connectClient(clientVolfile({
      hosts: "127.0.0.2", port: 24130, extra: ["ssl on", `ssl-cert ${p("client.pem")}`, `ssl-key ${p("client.key")}`, `ssl-ca ${p("ca.pem")}`],
    }));
    assert.equal(good.client.isUp(), true);
    const data = Buffer.alloc(300000, 7);
    const fd = new Fd("/tls.bin", 0o2 | 0o100);
    await good.client.create(CTX, { path: "/tls.bin" }, fd.flags, 0o644, fd);
    assert.equal(await good.client.write(CTX, fd, data, 0), data.length);
    assert.ok((await good.client.read(CTX, fd, data.length, 0)).equals(data));
    await good.client.release(CTX, fd);

    const plain = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24130, timeout: 2 }));
    const rogue = await connectClient(clientVolfile({
      hosts: "127.0.0.2", port: 24130, timeout: 2,
      extra: ["ssl on", `ssl-cert ${p("rogue.pem")}`, `ssl-key ${p("rogue.key")}`, `ssl-ca ${p("ca.pem")}`],
    }));
    for (const c of [plain, rogue]) {
      assert.equal(c.client.isUp(), false);
      assert.equal(await codeOf(c.client.stat(CTX, { path: "/" })), "ENOTCONN");
    }
  });
});

describe("locks", () => {
  test("every lock a client held is released when its connection drops", async () => {
    await startBrickServer({ host: "127.0.0.2", port: 24135 });
    const dir = tempDir();
    const vol = join(dir, "client.vol");
    writeFileSync(vol, clientVolfile({ hosts: "127.0.0.2", port: 24135 }));
    const holder = spawnHelper(["lock-holder", vol, "/locked"]);
    await waitForLine(holder, /^locked$/);
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24135 }));
    const fd = new Fd("/locked", 0o2);
    await c.client.open(CTX, { path: "/locked" }, fd.flags, fd);
    const me = { type: "wr" as const, start: 0, len: 0, pid: process.pid };
    assert.equal(await codeOf(c.client.lk(CTX, fd, "setlk", me)), "EAGAIN");
    assert.equal(await codeOf(c.client.inodelk(CTX, "test-domain", { path: "/locked" }, "setlk", me)), "EAGAIN");
    holder.kill("SIGKILL");
    await until("the holder's locks are released", async () => (await codeOf(c.client.lk(CTX, fd, "setlk", me))) === "OK", 5000);
    assert.equal(await codeOf(c.client.inodelk(CTX, "test-domain", { path: "/locked" }, "setlk", me)), "OK");
    await c.client.release(CTX, fd);
  });

  test("locks riding on fops are owned per upstream client like the fop's own owner, also an unlock naming another owner", async () => {
    await startBrickServer({ host: "127.0.0.2", port: 24136 });
    const c = await connectClient(clientVolfile({ hosts: "127.0.0.2", port: 24136 }));
    // a server-side replica's peer link: its clients' owners arrive through one connection
    const batch: CallCtx = { ...CTX, client: "upstream-1", lkOwner: "batch" };
    const closer: CallCtx = { ...CTX, client: "upstream-1", lkOwner: "closer" };
    const elsewhere: CallCtx = { ...CTX, client: "upstream-2", lkOwner: "batch" };
    const fd = new Fd("/riding", 0o2);
    await c.client.create(closer, { path: "/riding" }, 0o2 | 0o100, 0o644, fd);
    const lock = { kind: "inode", domain: "d", loc: { path: "/riding" }, start: 0, len: 0 };
    const whole = { type: "wr" as const, start: 0, len: 0, pid: 1 };
    await c.client.xattrop(batch, { path: "/riding" }, "add32", { "trusted.t": Buffer.alloc(4) }, { [LOCKS_FIRST_XDATA]: [lock] });
    assert.equal(await codeOf(c.client.inodelk(elsewhere, "d", { path: "/riding" }, "setlk", whole)), "EAGAIN", "same owner name, other upstream client");
    // another upstream client naming "batch" cannot release it
    await c.client.flush(elsewhere, fd, { [LOCKS_AFTER_XDATA]: [{ ...lock, owner: "batch" }] });
    assert.equal(await codeOf(c.client.inodelk(closer, "d", { path: "/riding" }, "setlk", whole)), "EAGAIN");
    // the closing process of the same upstream client releases the batch's lock with its flush
    await c.client.flush(closer, fd, { [LOCKS_AFTER_XDATA]: [{ ...lock, owner: "batch" }] });
    assert.equal(await codeOf(c.client.inodelk(elsewhere, "d", { path: "/riding" }, "setlk", whole)), "OK");
    await c.client.inodelk(elsewhere, "d", { path: "/riding" }, "setlk", { ...whole, type: "un" });
    await c.client.release(closer, fd);
  });
});
