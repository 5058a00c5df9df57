/**
 * Small-sample statistics for benchmarks on a shared, noisy machine: medians
 * rather than means (one stalled sample moves a mean, not a median), p90 only
 * where there are enough samples for it to mean something.
 */
export interface Summary {
  readonly n: number;
  readonly median: number;
  /** Undefined below MIN_SAMPLES_FOR_P90 samples. */
  readonly p90: number | undefined;
  readonly min: number;
  readonly max: number;
}

export const MIN_SAMPLES_FOR_P90 = 10;

/** Nearest-rank percentile (q in 0..1) of a non-empty list. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

/** The median; for an even count, the mean of the two middle values. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: median(values),
    p90: values.length >= MIN_SAMPLES_FOR_P90 ? percentile(values, 0.9) : undefined,
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/**
 * Per-key medians of count maps (e.g. API calls by action, one map per
 * sample); a key missing in a sample counts 0, and keys whose median is 0 are
 * left out, like keys that never changed in a snapshot diff.
 */
export function medianCounts(samples: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const keys = new Set(samples.flatMap((s) => Object.keys(s)));
  const out: Record<string, number> = {};
  for (const key of [...keys].sort()) {
    const m = median(samples.map((s) => s[key] ?? 0));
    if (m !== 0) out[key] = m;
  }
  return out;
}

export function sumCounts(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
