import { spawn } from "node:child_process";
import { closeSync, constants as fsConstants, openSync, write } from "node:fs";
import { errnoNumber, FopError } from "../../core/errors";
import { transientReclaims } from "../../core/transient-buffers";
import { loadFuseDevice, type FuseDevice } from "./device";
import { parseRequest, type Request } from "./protocol";

const EAGAIN = errnoNumber("EAGAIN");
const EINTR = errnoNumber("EINTR");
const ENOENT = errnoNumber("ENOENT");

/** At most this many requests are read per wakeup before other I/O gets its turn. */
const READ_BATCH = 64;
/** Spare read buffers kept (each is max_write + a page). */
const SPARE_BUFFERS = 4;
/** How often, while requests flow, glibc's free heap pages are given back (see trimHeap). */
const HEAP_TRIM_MS = 1000;

export interface ChannelMountOptions {
  mountpoint: string;
  fsname: string;
  subtype: string;
  allowOther: boolean;
  defaultPermissions: boolean;
  maxRead: number;
}

/**
 * The mount's /dev/fuse connection, served from the event loop: the kernel's requests are read
 * when the device is readable (a poll handle on the loop, runtime/fuse/kernel/fuse_device.c) and
 * answered with one writev each, so a request costs no thread handoff at all (fuse-native hands every
 * request from a libfuse thread to the loop and back).
 *
 * Mounting is mount(8) with the open device passed as its fd 3 (`-o fd=3`): the kernel ties the new
 * mount to the open file, which stays ours after mount(8) exits. No setuid helper, no libfuse.
 */
export class FuseChannel {
  private fd = -1;
  private watcher: { close(): void } | undefined;
  private readonly spare: Buffer[] = [];
  private readonly device: FuseDevice = loadFuseDevice();
  private closedWith: number | undefined;
  private heapTrim: NodeJS.Timeout | undefined;
  private readsSinceTrim = 0;
  private fullReclaimsAtTrim = 0;

  constructor(
    /** Each read buffer's size: the largest request (max_write + headers). */
    private readonly bufferSize: number,
    /** A request; returns true when it keeps `buf` (a write's data), to be handed back with giveBack(). */
    private readonly onRequest: (req: Request, buf: Buffer) => boolean,
    /** The connection ended (unmounted, aborted): the errno read returned. */
    private readonly onClosed: (errno: number) => void,
  ) {}

  get isOpen(): boolean {
    return this.fd >= 0 && this.closedWith === undefined;
  }

  async mount(o: ChannelMountOptions): Promise<void> {
    this.fd = openSync("/dev/fuse", fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const options = [
      "fd=3", "rootmode=40000", `user_id=${uid}`, `group_id=${gid}`, `max_read=${o.maxRead}`,
      ...(o.allowOther ? ["allow_other"] : []),
      ...(o.defaultPermissions ? ["default_permissions"] : []),
    ].join(",");
    // -i: no /sbin/mount.fuse* helper; the kernel gets the options as they are.
    const args = ["-i", "-t", `fuse.${o.subtype}`, "-o", options, o.fsname, o.mountpoint];
    try {
      await new Promise<void>((resolve, reject) => {
        const child = spawn("mount", args, { stdio: ["ignore", "ignore", "pipe", this.fd] });
        let stderr = "";
        child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", (err) => reject(new FopError("EIO", `mount ${o.mountpoint}: ${err.message}`, { fop: "mount" })));
        child.on("close", (code) => {
          if (code === 0) resolve();
          else reject(new FopError("EIO", `mount ${o.mountpoint}: mount(8) exited ${code}: ${stderr.trim()}`, { fop: "mount" }));
        });
      });
    } catch (err) {
      this.close();
      throw err;
    }
    // Only now: before the mount the device polls readable and reads fail (EPERM). The kernel's INIT
    // is already waiting.
    this.watcher = this.device.watch(this.fd, () => this.readable());
    this.heapTrim = setInterval(() => this.trimHeap(), HEAP_TRIM_MS).unref();
  }

  /**
   * Gives glibc's free heap back once a second while requests flow (fuse_device.c, trimHeap: ~15-30 MB
   * after streaming), and once after the full collection that follows a stream of big buffers
   * (core/transient-buffers): what that collection frees comes after the stream's last requests.
   */
  private trimHeap(): void {
    const full = transientReclaims().full;
    if (this.readsSinceTrim === 0 && full === this.fullReclaimsAtTrim) return;
    this.readsSinceTrim = 0;
    this.fullReclaimsAtTrim = full;
    this.device.trimHeap();
  }

  /** Sends one reply or notification (header + body buffers). A reply to a request the kernel gave up on (interrupted) is dropped. */
  send(bufs: Buffer[]): void {
    if (this.fd < 0) return;
    const n = this.device.writev(this.fd, bufs);
    if (n < 0 && n !== -ENOENT && this.closedWith === undefined) this.onSendError?.(-n);
  }

  onSendError: ((errno: number) => void) | undefined;

  /**
   * Sends a notification from a pool thread, in order with the others sent this way: for those the
   * kernel may block on a lock that a request in flight holds (it waits for our reply to that).
   */
  sendAside(buf: Buffer): void {
    this.aside.push(buf);
    if (this.aside.length === 1) this.drainAside();
  }

  private readonly aside: Buffer[] = [];

  private drainAside(): void {
    const buf = this.aside[0];
    if (!buf || this.fd < 0) {
      this.aside.length = 0;
      return;
    }
    write(this.fd, buf, 0, buf.length, null, () => {
      this.aside.shift();
      this.drainAside();
    });
  }

  giveBack(buf: Buffer): void {
    if (this.spare.length < SPARE_BUFFERS && buf.length === this.bufferSize) this.spare.push(buf);
  }

  /** Stops reading and closes the device (the kernel then fails whatever is still in flight). */
  close(): void {
    clearInterval(this.heapTrim);
    this.watcher?.close();
    this.watcher = undefined;
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }

  private readable(): void {
    for (let i = 0; i < READ_BATCH && this.fd >= 0; i++) {
      const buf = this.spare.pop() ?? Buffer.allocUnsafe(this.bufferSize);
      const n = this.device.read(this.fd, buf);
      if (n > 0) this.readsSinceTrim++;
      if (n < 0) {
        this.giveBack(buf);
        if (n === -EAGAIN) return;
        // ENOENT: the request was interrupted before we read it.
        if (n === -EINTR || n === -ENOENT) continue;
        this.ended(-n);
        return;
      }
      if (!this.onRequest(parseRequest(buf, n), buf)) this.giveBack(buf);
    }
  }

  private ended(errno: number): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = errno;
    this.watcher?.close();
    this.watcher = undefined;
    this.onClosed(errno);
  }
}
