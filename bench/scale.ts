import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { machineInfo } from "./machine.js";
import { parseScaleArgs, SCALE_USAGE, type ScaleArgs } from "./scale-options.js";
import { renderScaleMarkdown, renderScaleText, type ScaleReport } from "./scale-report.js";
import { runScale, type ScaleResult } from "./scale-run.js";
import { renderSplitMarkdown, renderSplitText, type SplitReport } from "./scale-split-report.js";
import { runScaleSplit } from "./scale-split.js";

/**
 * `npm run bench:scale [-- --tenants 10000 --controllers 1,3 --quick]`: the
 * controller's own cost at fleet scale, on in-memory fakes (bench/fakes):
 * onboarding 10,000 tenants from empty, the memory of the converged fleet,
 * and one full resync pass, each against the ECS API floor its calls imply.
 * See BENCHMARKS.md "Scale: 10,000 tenants".
 *
 * Each controller count runs in a fresh process, so one run's garbage and
 * grown heap do not weigh on the next run's RSS.
 */

const say = (line: string) => process.stderr.write(`${line}\n`);

let args: ScaleArgs;
try {
  args = parseScaleArgs(process.argv.slice(2));
} catch (err) {
  say(`${err instanceof Error ? err.message : String(err)}\n${SCALE_USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(`${SCALE_USAGE}\n`);
  process.exit(0);
}

if (args.controllerProcess) {
  // The controller's RSS alone: the fakes stay here, the controller runs in a child (bench/scale-split.ts).
  const split = await runScaleSplit({
    tenants: args.tenants,
    mix: args.mix,
    concurrency: args.concurrency,
    leaseSeconds: args.leaseSeconds,
    throttle: args.throttle,
    logLevel: args.logLevel,
    timeoutMs: args.timeoutMs,
    compiled: args.compiled,
    progress: say,
  });
  const report: SplitReport = { machine: machineInfo(), source: source(), split };
  if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (args.markdown) process.stdout.write(`${renderSplitMarkdown(report)}\n`);
  else process.stdout.write(`${renderSplitText(report)}\n`);
  process.exit(0);
}

const runs: ScaleResult[] = [];
if (args.controllers.length === 1) {
  runs.push(
    await runScale({
      tenants: args.tenants,
      mix: args.mix,
      controllers: args.controllers[0] ?? 1,
      concurrency: args.concurrency,
      leaseSeconds: args.leaseSeconds,
      throttle: args.throttle,
      logLevel: args.logLevel,
      timeoutMs: args.timeoutMs,
      progress: say,
      ...(args.cpuProfileDir !== undefined ? { cpuProfileDir: args.cpuProfileDir } : {}),
    }),
  );
} else {
  for (const n of args.controllers) runs.push(child(n));
}

const report: ScaleReport = { machine: machineInfo(), source: source(), runs };
if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else if (args.markdown) process.stdout.write(`${renderScaleMarkdown(report)}\n`);
else process.stdout.write(`${renderScaleText(report)}\n`);

/** One controller count in a process of its own (same flags, same Node options such as --expose-gc). */
function child(controllers: number): ScaleResult {
  const argv = process.argv.slice(2).filter((a, i, all) => a !== "--controllers" && all[i - 1] !== "--controllers");
  const rest = argv.filter((a) => !a.startsWith("--controllers=") && a !== "--json" && a !== "--markdown");
  const script = fileURLToPath(import.meta.url);
  say(`-- ${controllers} controller(s) --`);
  const r = spawnSync(process.execPath, [...process.execArgv, script, ...rest, "--controllers", String(controllers), "--json"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`the run with ${controllers} controller(s) failed (exit ${r.status ?? r.signal ?? "?"})`);
  const parsed = JSON.parse(r.stdout) as ScaleReport;
  const run = parsed.runs[0];
  if (run === undefined) throw new Error(`the run with ${controllers} controller(s) reported nothing`);
  return run;
}

function source(): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { encoding: "utf8" }).split("\n").filter(Boolean).length;
    return dirty > 0 ? `${commit} + ${dirty} uncommitted files under src/` : commit;
  } catch {
    return "unknown";
  }
}
