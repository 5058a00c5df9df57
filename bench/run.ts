import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { BenchFixture, DEFAULT_TUNING, type FixtureOptions } from "./fixture.js";
import { measureOnboarding, type LatencySample } from "./latency.js";
import { machineInfo } from "./machine.js";
import { measureLifecycle, summarizeLifecycles, type OperationSample } from "./operations.js";
import { renderReport, summarizeLatency, type BenchReport } from "./report.js";
import { convergePool, TIERS } from "./tenants.js";
import { defaultMix, measureThroughput, type ThroughputResult } from "./throughput.js";

/**
 * `npm run bench`: latency, API calls per tenant and throughput of the
 * controller against the local cloud (moto + the local ECS scheduler on
 * loopback, the real SDK code path). Prints a table on stdout; with --json,
 * the JSON report on stdout and the table on stderr. Progress goes to stderr.
 */
const USAGE = `usage: npm run bench -- [options]
  --json                   JSON report on stdout (the table goes to stderr)
  --out FILE               also write the JSON report to FILE
  --only LIST              sections to run: latency,calls,throughput (default all)
  --samples N              latency samples per tier (default 10)
  --reps N                 lifecycle (call count) samples per tier (default 1: the counts are deterministic)
  --tenants N              tenants per throughput run, 40% basic / 40% advanced / 20% premium (default 100)
  --runs LIST              throughput runs, each off|on (throttling) and a CONCURRENCY:
                           (default off-8,on-8,off-32; add on-32 for the full matrix)
  --speed N                simulated ECS speed (default 10, the local default)
  --concurrency N          CONCURRENCY for the latency and call sections (default 8)
  --poll-ms N --max-poll-ms N --stream-poll-ms N
                           controller tuning (default ${DEFAULT_TUNING.pollMs} / ${DEFAULT_TUNING.maxPollMs} / ${DEFAULT_TUNING.streamPollMs}, production defaults)
  --timeout-s N            give up a throughput run after N seconds (default 600)
  --quick                  a smoke run: 3 samples, 1 rep, 20 tenants, runs off-8,on-8`;

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    out: { type: "string" },
    only: { type: "string" },
    samples: { type: "string" },
    reps: { type: "string" },
    tenants: { type: "string" },
    runs: { type: "string" },
    speed: { type: "string", default: "10" },
    concurrency: { type: "string", default: "8" },
    "poll-ms": { type: "string", default: String(DEFAULT_TUNING.pollMs) },
    "max-poll-ms": { type: "string", default: String(DEFAULT_TUNING.maxPollMs) },
    "stream-poll-ms": { type: "string", default: String(DEFAULT_TUNING.streamPollMs) },
    "timeout-s": { type: "string", default: "600" },
    quick: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const quick = args.quick;
const sections = new Set((args.only ?? "latency,calls,throughput").split(",").map((s) => s.trim()));
for (const s of sections) if (!["latency", "calls", "throughput"].includes(s)) fail(`--only: unknown section ${s}`);
const samples = int("samples", args.samples ?? (quick ? "3" : "10"), 1);
const reps = int("reps", args.reps ?? "1", 1);
const tenants = int("tenants", args.tenants ?? (quick ? "20" : "100"), 3);
const runs = (args.runs ?? (quick ? "off-8,on-8" : "off-8,on-8,off-32")).split(",").map((r) => {
  const m = /^(off|on)-(\d+)$/.exec(r.trim());
  if (!m) fail(`--runs: ${r} must look like off-8 or on-32`);
  return { throttling: m?.[1] === "on", concurrency: int("runs concurrency", m?.[2] ?? "", 1) };
});
const base: FixtureOptions = {
  speed: num("speed", args.speed),
  throttling: false,
  concurrency: int("concurrency", args.concurrency, 1),
  pollMs: int("poll-ms", args["poll-ms"], 1),
  maxPollMs: int("max-poll-ms", args["max-poll-ms"], 1),
  streamPollMs: int("stream-poll-ms", args["stream-poll-ms"], 1),
};
if (base.speed <= 0) fail("--speed must be above 0: latency is measured in real time");
const timeoutMs = int("timeout-s", args["timeout-s"], 1) * 1000;

const log = (line: string) => process.stderr.write(`${line}\n`);
const started = performance.now();
const report: { -readonly [K in keyof BenchReport]: BenchReport[K] } = {
  machine: machineInfo(),
  source: sourceInfo(),
  durationMs: 0,
};

if (sections.has("latency") || sections.has("calls")) {
  log(`starting the local cloud and controller (speed ${base.speed}x, CONCURRENCY ${base.concurrency})`);
  const fx = await BenchFixture.start(base);
  try {
    await convergePool(fx);
    // Lifecycles first: they need a table with no other tenant in it.
    if (sections.has("calls")) {
      const byTier: OperationSample[][] = [];
      for (const tier of TIERS) {
        const mine: OperationSample[] = [];
        for (let i = 0; i < reps; i++) {
          log(`calls: ${tier} lifecycle ${i + 1}/${reps}`);
          mine.push(await measureLifecycle(fx, `ops-${tier}-${i}`, tier));
        }
        byTier.push(mine);
      }
      report.operations = { settings: fx.settings, tiers: byTier.map((s, i) => summarizeLifecycles(TIERS[i] ?? "basic", s)) };
    }
    if (sections.has("latency")) {
      const all: LatencySample[] = [];
      // Tiers take turns, so a slow spell of the shared machine spreads over all of them.
      for (let i = 0; i < samples; i++) {
        for (const tier of TIERS) all.push(await measureOnboarding(fx, `lat-${tier}-${i}`, tier));
        log(`latency: ${i + 1}/${samples} rounds`);
      }
      report.latency = { settings: fx.settings, samples: all, summary: summarizeLatency(all) };
    }
  } finally {
    await fx.stop();
  }
}

if (sections.has("throughput")) {
  const results: ThroughputResult[] = [];
  for (const run of runs) {
    const label = `throttling ${run.throttling ? "on" : "off"}, CONCURRENCY ${run.concurrency}`;
    log(`throughput: ${label}, ${tenants} tenants`);
    results.push(
      await measureThroughput(
        label,
        { ...base, throttling: run.throttling, concurrency: run.concurrency },
        defaultMix(tenants),
        timeoutMs,
        log,
      ),
    );
  }
  const first = results[0]?.allReadyMs;
  const ratios = Object.fromEntries(
    results.map((r) => [r.label, first === undefined || r.allReadyMs === undefined ? undefined : r.allReadyMs / first]),
  );
  report.throughput = { runs: results, ratios };
}

report.durationMs = performance.now() - started;
const json = JSON.stringify(report, null, 2);
if (args.out !== undefined) await writeFile(args.out, `${json}\n`);
if (args.json) {
  process.stdout.write(`${json}\n`);
  process.stderr.write(`${renderReport(report)}\n`);
} else {
  process.stdout.write(`${renderReport(report)}\n`);
}
// Unref'd timers of the SDK's sockets aside, nothing should hold the process; exit in case something does.
process.exit(0);

function sourceInfo(): BenchReport["source"] {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.trim() !== "").length;
    return { commit, dirtyFiles: dirty };
  } catch {
    return { commit: "unknown", dirtyFiles: 0 };
  }
}

function num(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) fail(`--${name} must be a number, got ${value}`);
  return n;
}

function int(name: string, value: string, min: number): number {
  const n = num(name, value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be a whole number of at least ${min}, got ${value}`);
  return n;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}
