/**
 * CloudWatch Embedded Metric Format: one JSON line on stdout per interval,
 * which the awslogs driver ships and CloudWatch turns into metrics with no
 * API call and no agent. The names below are a contract: the deployment
 * template's alarms are built on them (README "Metrics").
 */

export const EMF_NAMESPACE = "ECSTenantOperator";
export const EMF_DIMENSION = "Operator";

/** Every metric of the line, with its CloudWatch unit, in the order they are listed. */
export const EMF_METRICS = {
  /** Tenants outside Ready/Suspended/Deprovisioned for longer than STUCK_AFTER_SECONDS (leader only). */
  TenantsStuck: "Count",
  /** Failed reconciles, transient or terminal, in the interval. */
  ReconcileErrors: "Count",
  /** Leader leases lost while leading, in the interval. */
  LeaseLost: "Count",
  /** How far behind the tenants table's stream the controller reads (leader only). */
  StreamLagSeconds: "Seconds",
  /** Status events EventBridge did not take, in the interval. */
  EventPublishFailures: "Count",
  /** Reconciles, whatever their result, in the interval. */
  Reconciles: "Count",
  /** Seconds since the last full resync completed (leader only). */
  ResyncAgeSeconds: "Seconds",
} as const;
export type EmfMetricName = keyof typeof EMF_METRICS;
export type EmfValues = Partial<Record<EmfMetricName, number>>;

/**
 * One EMF document: `_aws` metadata naming each metric present, the
 * dimension, and the values as top-level members. A metric without a finite
 * value is left out of both (EMF rejects a declared metric with no number).
 */
export function emfLine(values: EmfValues, operator: string, timestampMs: number): string {
  const names = (Object.keys(EMF_METRICS) as EmfMetricName[]).filter((n) => Number.isFinite(values[n]));
  return JSON.stringify({
    _aws: {
      Timestamp: Math.round(timestampMs),
      CloudWatchMetrics: [
        {
          Namespace: EMF_NAMESPACE,
          Dimensions: [[EMF_DIMENSION]],
          Metrics: names.map((n) => ({ Name: n, Unit: EMF_METRICS[n] })),
        },
      ],
    },
    [EMF_DIMENSION]: operator,
    ...Object.fromEntries(names.map((n) => [n, values[n]])),
  });
}

export interface EmfEmitterOptions {
  /** The dimension's value: the config NAME_PREFIX, one per operator installation. */
  readonly operator: string;
  /** EMF_INTERVAL_SECONDS, in ms. */
  readonly intervalMs: number;
  /** The values of the next line; counts in it must be those since the previous call. */
  readonly sample: () => EmfValues;
  /**
   * Where a line goes, whole and on its own: stdout directly, never through
   * the logger, whose JSON would wrap the document and hide it from CloudWatch.
   */
  readonly write?: (line: string) => void;
  /** @default Date.now */
  readonly now?: () => number;
  /** Told when sampling or writing fails; emitting carries on at the next interval. */
  readonly onError?: (err: unknown) => void;
}

/** Emits a line every interval from start() until stop(), and a last one at stop() so the final counts are not lost. */
export class EmfEmitter {
  readonly #o: EmfEmitterOptions;
  readonly #write: (line: string) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: EmfEmitterOptions) {
    if (!(options.intervalMs > 0)) throw new RangeError(`EMF interval must be positive, got ${options.intervalMs} ms`);
    this.#o = options;
    this.#write = options.write ?? ((line) => void process.stdout.write(`${line}\n`));
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.emit(), this.#o.intervalMs);
    // Metrics are no reason for the process to stay up.
    this.#timer.unref();
  }

  /** Writes one line now. */
  emit(): void {
    try {
      this.#write(emfLine(this.#o.sample(), this.#o.operator, (this.#o.now ?? Date.now)()));
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.emit();
  }
}
