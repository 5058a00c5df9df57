import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { machineInfo } from "../bench/machine.js";
import { ROOT } from "./cloud.js";
import {
  faultsDuringOnboarding,
  fuzzedRecords,
  killDuringOnboarding,
  leaderKills,
  openWorlds,
  type CommonOptions,
  type ScenarioResult,
} from "./scenarios.js";

/**
 * `npm run chaos`: the reliability scenarios against a local AWS, with
 * `tenantctl controller` processes that are killed, starved and fed garbage.
 * Prints one table (and JSON with --json / --out); exits 1 when any scenario
 * lost a tenant, duplicated or orphaned a resource, wrote to an unmanaged
 * one, or took over slower than the lease. RELIABILITY.md explains each.
 */
// Node 20 runs here; the SDK's notice that its 2027 releases need Node 22 is noise in a chaos log.
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";

const SCENARIOS = ["kill", "faults", "fuzz", "leader"] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `usage: npm run chaos -- [options]
  --scenario LIST      kill,faults,fuzz,leader (default all, in that order)
  --tenants N          tenants onboarded in kill and faults (default 100)
  --rounds N           kill -9 rounds in kill (default 20)
  --max-kill-delay-ms N  a kill lands up to N ms after the controller took the lease (default 20000)
  --invalid N          fuzzed invalid records in fuzz (default 1000)
  --valid N            plain valid records in fuzz (default 60; the first --corrupted are made invalid once Ready)
  --odd-valid N        odd but valid fuzzed records in fuzz (default 40)
  --corrupted N        Ready tenants made invalid in place in fuzz (default 10)
  --controllers N      controllers in leader (default 3)
  --kills N            leader kills in leader (default 10)
  --leader-tenants N   tenants onboarded in leader, plus 2 more after each kill (default 30)
  --lease-seconds N    LEASE_SECONDS of every controller (default 5 for kill; 15, the production default, for the others)
  --error-rate X       share of calls answered 503 in faults (default 0.05)
  --latency-ms N       latency added to every call in faults (default 200)
  --speed X            simulated ECS time per real second (default 10)
  --settle-s N         how long the fleet may take to settle after the damage (default 2400)
  --seed N             seed of kill points and fuzzed records (default: the time)
  --log-dir DIR        logs of the local AWS and every controller (default .local/chaos/<time>)
  --json               JSON results on stdout (the table goes to stderr)
  --out FILE           also write the JSON results to FILE`;

const int = (name: string, min: number, max: number) =>
  z.coerce
    .number({ error: `--${name} must be a number` })
    .int(`--${name} must be a whole number`)
    .min(min, `--${name} must be at least ${min}`)
    .max(max, `--${name} must be at most ${max}`);

const flagsSchema = z.object({
  scenario: z
    .string()
    .default(SCENARIOS.join(","))
    .transform((s) => s.split(",").map((x) => x.trim()))
    .pipe(z.array(z.enum(SCENARIOS, { error: `--scenario must list ${SCENARIOS.join(", ")}` })).min(1)),
  tenants: int("tenants", 1, 2000).default(100),
  rounds: int("rounds", 0, 500).default(20),
  "max-kill-delay-ms": int("max-kill-delay-ms", 0, 600_000).default(20_000),
  invalid: int("invalid", 0, 100_000).default(1000),
  valid: int("valid", 1, 2000).default(60),
  "odd-valid": int("odd-valid", 0, 2000).default(40),
  corrupted: int("corrupted", 0, 2000).default(10),
  controllers: int("controllers", 2, 20).default(3),
  kills: int("kills", 1, 500).default(10),
  "leader-tenants": int("leader-tenants", 1, 2000).default(30),
  "lease-seconds": int("lease-seconds", 1, 600).optional(),
  "error-rate": z.coerce.number({ error: "--error-rate must be a number" }).min(0).max(1).default(0.05),
  "latency-ms": int("latency-ms", 0, 120_000).default(200),
  speed: z.coerce.number({ error: "--speed must be a number" }).positive("--speed must be above 0").max(10_000).default(10),
  "settle-s": int("settle-s", 10, 86_400).default(2400),
  seed: int("seed", 0, 2 ** 31 - 1).default(() => Date.now() % 2 ** 31),
  "log-dir": z.string().min(1).optional(),
  json: z.boolean().default(false),
  out: z.string().min(1).optional(),
  help: z.boolean().default(false),
});

async function main(): Promise<number> {
  let raw: ReturnType<typeof parseArgs>["values"];
  try {
    raw = parseArgs({
      options: Object.fromEntries(
        Object.keys(flagsSchema.shape).map((k) => [k, { type: ["json", "help"].includes(k) ? ("boolean" as const) : ("string" as const) }]),
      ),
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    return 2;
  }
  const parsed = flagsSchema.safeParse(raw);
  if (!parsed.success) {
    process.stderr.write(`chaos: ${parsed.error.issues.map((i) => i.message).join("; ")}\n\n${USAGE}\n`);
    return 2;
  }
  const f = parsed.data;
  if (f.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (f.corrupted > f.valid) {
    process.stderr.write("chaos: --corrupted must be at most --valid\n");
    return 2;
  }
  const logDir = f["log-dir"] ?? join(ROOT, ".local", "chaos", new Date().toISOString().replace(/[:.]/g, "-"));
  mkdirSync(logDir, { recursive: true });
  const progress = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const common = (scenario: Scenario): CommonOptions => ({
    speed: f.speed,
    logDir,
    seed: f.seed,
    settleTimeoutMs: f["settle-s"] * 1000,
    // kill restarts a controller 20 times, each waiting out the dead one's lease: 5 s keeps that short.
    // The others run at the production default, 15 s.
    leaseSeconds: f["lease-seconds"] ?? (scenario === "kill" ? 5 : 15),
    progress,
  });
  const machine = machineInfo();
  progress(`chaos run: ${f.scenario.join(", ")}; seed ${f.seed}; logs in ${logDir}`);
  const results: ScenarioResult[] = [];
  for (const scenario of f.scenario) {
    progress(`scenario ${scenario} starting`);
    const r = await run(scenario, common(scenario), f);
    results.push(r);
    progress(`scenario ${scenario} done in ${Math.round(r.durationMs / 1000)} s: ${JSON.stringify(r.totals)}`);
  }
  const output = { machine, seed: f.seed, logDir, results, pass: results.every(passed) };
  const table = render(results, machine);
  if (f.json) {
    process.stderr.write(table);
    process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  } else process.stdout.write(table);
  if (f.out !== undefined) writeFileSync(f.out, `${JSON.stringify(output, null, 2)}\n`);
  return output.pass ? 0 : 1;
}

function run(scenario: Scenario, common: CommonOptions, f: z.output<typeof flagsSchema>): Promise<ScenarioResult> {
  switch (scenario) {
    case "kill":
      return killDuringOnboarding({ ...common, tenants: f.tenants, rounds: f.rounds, maxKillDelayMs: f["max-kill-delay-ms"] });
    case "faults":
      return faultsDuringOnboarding({ ...common, tenants: f.tenants, errorRate: f["error-rate"], latencyMs: f["latency-ms"] });
    case "fuzz":
      return fuzzedRecords({ ...common, invalid: f.invalid, valid: f.valid, oddValid: f["odd-valid"], corrupted: f.corrupted });
    case "leader":
      return leaderKills({ ...common, controllers: f.controllers, kills: f.kills, tenants: f["leader-tenants"] });
  }
}

/**
 * A standby takes the lease right after the dead leader's expiry, with one
 * conditional write; that write's round trip on a loaded machine is allowed
 * on top of the lease.
 */
const TAKEOVER_ALLOWANCE_MS = 1000;

/** 0 lost, 0 duplicates, 0 orphans, 0 unmanaged writes, every takeover within the lease. */
export function passed(r: ScenarioResult): boolean {
  const t = r.totals;
  const zero = t.lost === 0 && t.duplicates === 0 && t.orphans === 0 && t.unmanagedWrites === 0;
  return zero && r.takeovers.every((s) => s.toLeaseMs <= r.leaseMs + TAKEOVER_ALLOWANCE_MS);
}

function render(results: readonly ScenarioResult[], machine: ReturnType<typeof machineInfo>): string {
  const lines = [
    "",
    `machine: ${machine.nproc} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.date}`,
    "",
    "| scenario | lost | duplicates | orphans | unmanaged writes | takeover p50 / max (lease) | first reconcile p50 / max | time | pass |",
    "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |",
  ];
  const p50max = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length === 0 ? "–" : `${seconds(s[Math.floor(s.length / 2)])} / ${seconds(s[s.length - 1])}`;
  };
  for (const r of results) {
    const t = r.totals;
    const lease = r.takeovers.length === 0 ? "–" : `${p50max(r.takeovers.map((s) => s.toLeaseMs))} (${r.leaseMs / 1000} s)`;
    const work = p50max(r.takeovers.map((s) => s.toReconcileMs));
    lines.push(
      `| ${r.scenario} | ${t.lost} | ${t.duplicates} | ${t.orphans} | ${t.unmanagedWrites} | ${lease} | ${work} | ${Math.round(r.durationMs / 1000)} s | ${passed(r) ? "yes" : "NO"} |`,
    );
  }
  for (const r of results) {
    lines.push("", `${r.scenario}: ${JSON.stringify(r.params)}`);
    for (const [k, v] of Object.entries(r.notes)) lines.push(`  ${k}: ${v}`);
    lines.push(`  managed resources read: ${JSON.stringify(r.counts)}`);
    for (const [kind, findings] of Object.entries(r.findings))
      for (const x of findings) lines.push(`  ${kind}: ${x.tenantId.slice(0, 80)}: ${x.what.slice(0, 400)}`);
  }
  return `${lines.join("\n")}\n`;
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? "–" : `${(ms / 1000).toFixed(1)} s`;
}

// Stopped by a signal: the controllers and the local AWS (and its moto) go first.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`chaos: ${signal}; stopping the controllers and the local AWS\n`);
    void Promise.allSettled([...openWorlds].map((w) => w.close())).then(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
