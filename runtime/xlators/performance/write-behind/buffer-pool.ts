/**
 * Buffers of one size, reused: write-behind's copies of the writes it acknowledges. A 128 KiB or
 * 1 MiB Buffer is a malloc'd backing store whose fresh pages fault in on first touch and which only a
 * GC frees; streaming writes made one per FUSE request (with 1 MiB writes, that copy took half the
 * client's CPU time). Ownership is plain: `take` hands a buffer
 * to the caller, who gives it back with `give` once nothing refers to it any more (write-behind:
 * when the write that sent it down has settled, so the child is done with it).
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers taken and not given back yet. */
  outstanding = 0;
  /** Buffers made (not reused). */
  made = 0;

  /**
   * @param size the size of every buffer
   * @param keep how many free buffers to keep at most (beyond that, given-back buffers go to the GC)
   */
  constructor(public size: number, public keep: number) {}

  take(): Buffer {
    this.outstanding++;
    const b = this.free.pop();
    if (b) return b;
    this.made++;
    return Buffer.allocUnsafeSlow(this.size);
  }

  give(b: Buffer): void {
    this.outstanding--;
    if (b.length === this.size && this.free.length < this.keep) this.free.push(b);
  }

  get freeCount(): number {
    return this.free.length;
  }

  /** Buffers of another size from now on: the free ones are dropped, those still out go to the GC when given back. */
  resize(size: number, keep: number): void {
    this.size = size;
    this.keep = keep;
    this.free.length = 0;
  }
}
