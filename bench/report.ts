import { medianBreakdown, type CallBreakdown } from "./breakdown.js";
import type { BenchSettings } from "./fixture.js";
import type { LatencySample } from "./latency.js";
import type { MachineInfo } from "./machine.js";
import { OPERATIONS, type OperationSummary } from "./operations.js";
import { summarize, sumCounts, type Summary } from "./stats.js";
import type { ThroughputResult } from "./throughput.js";

/** Everything one run measured, as `--json` prints it. */
export interface BenchReport {
  readonly machine: MachineInfo;
  readonly source: { readonly commit: string; readonly dirtyFiles: number };
  readonly durationMs: number;
  readonly latency?: {
    readonly settings: BenchSettings;
    readonly samples: readonly LatencySample[];
    readonly summary: Readonly<Record<string, Readonly<Record<LatencyMetric, Summary>>>>;
  };
  readonly operations?: { readonly settings: BenchSettings; readonly tiers: readonly OperationSummary[] };
  readonly throughput?: {
    readonly runs: readonly ThroughputResult[];
    /** allReadyMs of each run over the first run's (same machine, same invocation). */
    readonly ratios: Readonly<Record<string, number | undefined>>;
  };
}

export const LATENCY_METRICS = [
  "firstEcsMs",
  "readyWrittenMs",
  "readyPolledMs",
  "deployMs",
  "impliedDeployMs",
  "detectMs",
  "overheadMs",
] as const;
export type LatencyMetric = (typeof LATENCY_METRICS)[number];

const LATENCY_LABEL: Record<LatencyMetric, string> = {
  firstEcsMs: "(a) put -> first ECS call",
  readyWrittenMs: "(b) put -> Ready written",
  readyPolledMs: "    put -> Ready seen by poll",
  deployMs: "(c) ECS rollout (model)",
  impliedDeployMs: "    rollout implied by timing",
  detectMs: "    rollout done -> Ready",
  overheadMs: "    controller overhead (b-c)",
};

export function summarizeLatency(samples: readonly LatencySample[]): Record<string, Record<LatencyMetric, Summary>> {
  const out: Record<string, Record<LatencyMetric, Summary>> = {};
  for (const tier of [...new Set(samples.map((s) => s.tier))]) {
    const mine = samples.filter((s) => s.tier === tier);
    out[tier] = Object.fromEntries(
      LATENCY_METRICS.map((m) => {
        const values = mine.map((s) => s[m]).filter((v) => Number.isFinite(v));
        return [m, values.length > 0 ? summarize(values) : { n: 0, median: Number.NaN, p90: undefined, min: Number.NaN, max: Number.NaN }];
      }),
    ) as Record<LatencyMetric, Summary>;
  }
  return out;
}

export function renderReport(r: BenchReport): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`machine: ${m.nproc} cpu (${m.cpuModel}), ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}; ${m.date}`);
  out.push(
    `source: ${r.source.commit}${r.source.dirtyFiles > 0 ? ` + ${r.source.dirtyFiles} uncommitted files under src/` : ""}; run took ${(r.durationMs / 1000).toFixed(0)} s`,
  );

  if (r.latency) {
    out.push("", "== 1. Onboarding latency, one tenant at a time, idle converged controller (ms) ==", settingsLine(r.latency.settings));
    const tiers = Object.keys(r.latency.summary);
    const rows: string[][] = [["", ...tiers.flatMap((t) => [`${t} med`, "p90"])]];
    for (const metric of LATENCY_METRICS) {
      rows.push([LATENCY_LABEL[metric], ...tiers.flatMap((t) => cells(r.latency?.summary[t]?.[metric]))]);
    }
    rows.push(["samples", ...tiers.flatMap((t) => [String(r.latency?.summary[t]?.readyWrittenMs.n ?? 0), ""])]);
    out.push(table(rows));
  }

  if (r.operations) {
    out.push(
      "",
      "== 2. API calls per tenant (median over samples; ECS = requests that reached the endpoint) ==",
      settingsLine(r.operations.settings),
    );
    for (const t of r.operations.tiers) {
      out.push(`-- ${t.tier} (${t.samples} sample${t.samples === 1 ? "" : "s"}) --`);
      const rows: string[][] = [
        ["operation", "ECS", "reconciles", "x-check", "DynamoDB", "EventBridge", "CloudFormation", "ECS by action"],
      ];
      for (const op of OPERATIONS) rows.push(callRow(op, t.calls[op]));
      const fromLatency = r.latency?.samples.filter((s) => s.tier === t.tier) ?? [];
      if (fromLatency.length > 0) rows.push(callRow(`onboard (n=${fromLatency.length})`, medianBreakdown(fromLatency.map((s) => s.calls))));
      rows.push(callRow("(empty resync)", t.emptyResync));
      out.push(table(rows));
    }
    out.push(
      "x-check: the scheduler's count equals the controller's CallCounter attempts for every ECS action. Streams polling not shown (see --json).",
    );
  }

  if (r.throughput) {
    out.push("", "== 3. Throughput: tenants written at once, until the controller wrote Ready for all ==");
    const rows: string[][] = [
      [
        "run",
        "tenants",
        "all Ready s",
        "50% s",
        "90% s",
        "ratio",
        "ECS attempts",
        "throttled att.",
        "throttled calls",
        "retries",
        "bucket bound s",
        "Ready at end",
      ],
    ];
    for (const t of r.throughput.runs) {
      const attempts = sumCounts(t.calls.ecsAttempts);
      const calls = sumCounts(t.calls.ecsCalls);
      rows.push([
        t.label,
        `${t.tenants} (${t.mix.basic}/${t.mix.advanced}/${t.mix.premium})`,
        secs(t.allReadyMs),
        secs(t.halfReadyMs),
        secs(t.p90ReadyMs),
        ratio(r.throughput.ratios[t.label]),
        String(attempts),
        String(t.calls.ecsThrottledAttempts),
        String(t.calls.ecsThrottledCalls),
        String(attempts - calls),
        t.bucketBound ? `${secs(t.bucketBound.ms)} (${t.bucketBound.category})` : "-",
        String(t.readyAtEnd),
      ]);
    }
    out.push(table(rows));
    for (const t of r.throughput.runs) out.push(`${t.label}: ${settingsLine(t.settings)}`);
  }
  return out.join("\n");
}

function settingsLine(s: BenchSettings): string {
  const t = s.timing;
  return (
    `settings: speed ${s.speed}x, ECS throttling ${s.throttling ? "on" : "off"}, timing startDelay ${t.startDelayMs} / step ${t.stepMs} / drain ${t.drainMs} sim ms, ` +
    `CONCURRENCY ${s.concurrency}, pollMs ${s.pollMs}, maxPollMs ${s.maxPollMs}, streamPollMs ${s.streamPollMs}, RESYNC_SECONDS ${s.resyncSeconds}, LEASE_SECONDS ${s.leaseSeconds}`
  );
}

function callRow(label: string, c: CallBreakdown): string[] {
  const other = (s: string) => {
    const ops = c.other[s] ?? {};
    const total = sumCounts(ops);
    return total === 0
      ? "0"
      : `${fmt(total)} (${Object.entries(ops)
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(", ")})`;
  };
  return [
    label,
    fmt(sumCounts(c.ecs)),
    fmt(c.reconciles),
    c.crossCheck ? "ok" : "DIFFERS",
    other("dynamodb"),
    other("eventbridge"),
    other("cloudformation"),
    Object.entries(c.ecs)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(", ") || "-",
  ];
}

function cells(s: Summary | undefined): string[] {
  if (s === undefined || s.n === 0) return ["-", ""];
  return [fmt(s.median), s.p90 === undefined ? "" : fmt(s.p90)];
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return "-";
  return Number.isInteger(n) ? String(n) : Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1);
}

function secs(ms: number | undefined): string {
  return ms === undefined ? "timeout" : (ms / 1000).toFixed(1);
}

function ratio(x: number | undefined): string {
  return x === undefined ? "-" : `${x.toFixed(2)}x`;
}

/** Columns padded to their widest cell: the first and the last (free text) left-aligned, figures right-aligned. */
function table(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const align = (cell: string, i: number, last: number) =>
    i === 0 || (i === last && i > 1) ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0);
  return rows
    .map((row) =>
      row
        .map((cell, i) => align(cell, i, row.length - 1))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
