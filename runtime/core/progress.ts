/**
 * Progress of a long operation (full heal, bench, deploy steps). On a terminal: one line redrawn in
 * place (bar when the total is known, rate, ETA), at most every `intervalMs`. Not a terminal (a log,
 * CI, a pipe): a plain line every `plainEveryMs`, so logs stay readable and grep-able.
 */
export interface ProgressOptions {
  /** What is being done ("heal full", "write 1 GiB"). */
  label: string;
  /** The total, when known (bar and ETA need it). */
  total?: number;
  /** How to show amounts: "count" (files) or "bytes". */
  unit?: "count" | "bytes";
  /** Where to write (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Force terminal / plain mode (default: the stream's isTTY). */
  tty?: boolean;
  intervalMs?: number;
  plainEveryMs?: number;
  /** Clock (tests). */
  now?: () => number;
  /** When the operation began, if before this Progress was made (rate and elapsed count from it). */
  startedAt?: number;
}

export function formatAmount(n: number, unit: "count" | "bytes"): string {
  if (unit === "count") return String(Math.round(n));
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

export class Progress {
  private done = 0;
  private total: number | undefined;
  private detail = "";
  private lastDraw = -Infinity;
  private drawnTty = false;
  private finished = false;
  private readonly started: number;
  private readonly stream: NonNullable<ProgressOptions["stream"]>;
  private readonly tty: boolean;
  private readonly now: () => number;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? this.stream.isTTY === true;
    this.now = opts.now ?? Date.now;
    this.started = opts.startedAt ?? this.now();
    this.total = opts.total;
  }

  /** Sets the amount done so far (and optionally the total, once known, and a detail text). */
  update(done: number, o: { total?: number; detail?: string } = {}): void {
    this.done = done;
    if (o.total !== undefined) this.total = o.total;
    if (o.detail !== undefined) this.detail = o.detail;
    const every = this.tty ? (this.opts.intervalMs ?? 200) : (this.opts.plainEveryMs ?? 5000);
    if (this.now() - this.lastDraw >= every) this.draw();
  }

  add(n: number, o: { total?: number; detail?: string } = {}): void {
    this.update(this.done + n, o);
  }

  /** The current line (without control characters). */
  line(): string {
    const unit = this.opts.unit ?? "count";
    const secs = Math.max((this.now() - this.started) / 1000, 0.001);
    const rate = this.done / secs;
    const parts = [this.opts.label];
    if (this.total !== undefined && this.total > 0) {
      const frac = Math.min(this.done / this.total, 1);
      const width = 20;
      const filled = Math.round(frac * width);
      parts.push(`[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%`);
      parts.push(`${formatAmount(this.done, unit)}/${formatAmount(this.total, unit)}`);
    } else {
      parts.push(formatAmount(this.done, unit));
    }
    parts.push(`${formatAmount(rate, unit)}/s`);
    if (this.total !== undefined && this.total > 0 && !this.finished) {
      parts.push(`ETA ${rate > 0 ? formatDuration((this.total - this.done) / rate) : "?"}`);
    } else {
      parts.push(`elapsed ${formatDuration(secs)}`);
    }
    if (this.detail) parts.push(this.detail);
    return parts.join("  ");
  }

  /** Final line (terminal: ends the redrawn line). */
  finish(detail?: string): void {
    if (this.finished) return;
    if (detail !== undefined) this.detail = detail;
    this.finished = true;
    if (this.tty) {
      this.stream.write(`\r${this.fit(this.line())}\x1b[K\n`);
    } else {
      this.stream.write(`${this.line()}\n`);
    }
  }

  private fit(text: string): string {
    const cols = this.stream.columns;
    return cols && text.length >= cols ? text.slice(0, cols - 1) : text;
  }

  private draw(): void {
    this.lastDraw = this.now();
    if (this.tty) {
      this.drawnTty = true;
      this.stream.write(`\r${this.fit(this.line())}\x1b[K`);
    } else {
      this.stream.write(`${this.line()}\n`);
    }
  }

  /** Whether anything was drawn in place (a caller printing other lines first ends it with "\n"). */
  get onScreen(): boolean {
    return this.drawnTty && !this.finished;
  }
}
