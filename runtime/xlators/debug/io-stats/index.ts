import { FopError } from "../../../core/errors";
import { FOP_NAMES } from "../../../core/fops";
import { metrics } from "../../../core/metrics";
import { defineXlator, Xlator, type XlatorInit } from "../../../core/xlator";
import schema from "../../../../schema/xlators/debug/io-stats.json";

interface IoStatsOptions {
  "volume-label"?: string;
}

/** Counts and times every fop on its way down (GlusterFS's debug/io-stats). */
export class IoStats extends Xlator {
  readonly label: string;
  constructor(init: XlatorInit<IoStatsOptions>) {
    super(init);
    this.label = init.options["volume-label"] ?? this.child.name;
  }

  override dump(): Record<string, unknown> {
    return { label: this.label, metricsServed: m.isEnabled };
  }
}

const m = metrics();
for (const fop of FOP_NAMES) {
  (IoStats.prototype as unknown as Record<string, unknown>)[fop] = async function (this: IoStats, ...args: unknown[]) {
    const started = process.hrtime.bigint();
    let result = "ok";
    try {
      const out = await (this.child[fop] as (...a: unknown[]) => Promise<unknown>).apply(this.child, args);
      if (fop === "read" && Buffer.isBuffer(out)) m.bytesRead.inc({ volume: this.label }, out.length);
      else if (fop === "write" && typeof out === "number") m.bytesWritten.inc({ volume: this.label }, out);
      return out;
    } catch (err) {
      result = FopError.from(err).code;
      throw err;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      m.fops.inc({ volume: this.label, fop, result });
      m.fopSeconds.observe({ volume: this.label, fop }, seconds);
    }
  };
}

export default defineXlator<IoStatsOptions>({
  type: "debug/io-stats",
  schema,
  children: { min: 1, max: 1 },
  init: (init) => new IoStats(init),
});
