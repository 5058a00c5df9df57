import type { MachineInfo } from "./machine.js";
import { machineLine } from "./scale-report.js";
import type { MemoryPoint, SplitPhase, SplitResult } from "./scale-split.js";

/** `npm run bench:scale -- --controller-process`: its results as text (console) and as a BENCHMARKS.md table. */

export interface SplitReport {
  readonly machine: MachineInfo;
  readonly source: string;
  readonly split: SplitResult;
}

const POINTS = [
  ["nodeAlone", "Node alone (node -e, no tsx)"],
  ["started", "controller process at its first line (Node, + tsx unless compiled)"],
  ["composed", "composed, not started (every module loaded)"],
  ["onboarded", "after onboarding"],
  ["resynced", "after the resync pass"],
  ["cachesDropped", "then EcsProvider.invalidateCaches()"],
] as const;

export function renderSplitText(report: SplitReport): string {
  const r = report.split;
  const o = r.options;
  const cp = r.controllerProcess;
  const out = [
    machineLine(report.machine),
    `source: ${report.source}`,
    "",
    `== ${o.tenants} tenants (${o.mix.basic} basic / ${o.mix.advanced} advanced / ${o.mix.premium} premium), ONE controller in its own process (pid ${cp.pid}, ${o.compiled === true ? "tsc's output, no tsx" : "through tsx"}), the fakes in this one (pid ${r.parentProcess.pid}), CONCURRENCY ${o.concurrency}, ECS ${o.throttle ? "THROTTLED" : "unthrottled"} ==`,
    `controller process alone, after a full GC${cp.gc ? "" : " (NO --expose-gc in the child: figures without GC)"}:`,
    ...POINTS.map(([k, label]) => `  ${label.padEnd(68)} ${memLine(cp[k])}`),
    `this process (the fakes and the harness), after onboarding: ${memLine(r.parentProcess.onboarded)} (${r.parentProcess.baseline.rssMiB} MiB before the fleet)`,
    `1. onboarding: ${secs(r.onboarding.wallMs)} wall, ${r.onboarding.tenantsPerSecond.toFixed(0)} tenants/s; ${phaseLine(r.onboarding)}`,
    `2. one resync pass: ${secs(r.resync.wallMs)} wall; ${phaseLine(r.resync)}; controller CPU per reconcile ${r.resync.controllerCpuPerReconcileMs.toFixed(3)} ms (IPC included)`,
    `IPC: ${r.ipc.roundTrips} round trips from the controller (${r.ipc.answered} answered here): ${byCount(r.ipc.byCall, 8)}; control calls ${sum(r.ipc.control)}; notes ${byCount(r.ipc.notes, 4)}`,
    `load average ${r.load[0].toFixed(1)} -> ${r.load[1].toFixed(1)} on ${report.machine.nproc} cores; converged: ${r.converged.ready} Ready, ${r.converged.servicesSteady} of ${r.converged.servicesExpected} services steady, ${r.converged.premiumClusters} premium clusters, ${r.converged.leaders} leader(s)`,
  ];
  return out.join("\n");
}

export function renderSplitMarkdown(report: SplitReport): string {
  const r = report.split;
  const o = r.options;
  const cp = r.controllerProcess;
  const lines = [
    machineLine(report.machine),
    `source: ${report.source}`,
    `fleet: ${o.tenants} tenants (${o.mix.basic} basic / ${o.mix.advanced} advanced / ${o.mix.premium} premium), one controller in its own process (${o.compiled === true ? "tsc's output, no tsx" : "through tsx"}), CONCURRENCY ${o.concurrency}, ECS ${o.throttle ? "throttled" : "unthrottled"}`,
    "",
    "| controller process alone, after a full GC | RSS | heap used / total | external |",
    "|---|---:|---:|---:|",
    ...POINTS.map(([k, label]) => {
      const p = cp[k];
      return `| ${label} | ${p.rssMiB} MiB | ${p.heapUsedMiB} / ${p.heapTotalMiB} MiB | ${p.externalMiB} MiB |`;
    }),
    `| *the other process: the fakes and the harness, after onboarding* | *${r.parentProcess.onboarded.rssMiB} MiB* | *${r.parentProcess.onboarded.heapUsedMiB} / ${r.parentProcess.onboarded.heapTotalMiB} MiB* | *${r.parentProcess.onboarded.externalMiB} MiB* |`,
    "",
    "| | onboarding | resync pass |",
    "|---|---:|---:|",
    `| wall | ${secs(r.onboarding.wallMs)} | ${secs(r.resync.wallMs)} |`,
    `| reconciles | ${r.onboarding.reconciles} | ${r.resync.reconciles} |`,
    `| controller process CPU (IPC included) | ${secs(r.onboarding.controllerCpuMs)} | ${secs(r.resync.controllerCpuMs)} |`,
    `| IPC round trips | ${r.onboarding.roundTrips} | ${r.resync.roundTrips} |`,
    `| ECS reads / writes (sent = served) | ${r.onboarding.ecsReads} / ${r.onboarding.ecsWrites} (${same(r.onboarding)}) | ${r.resync.ecsReads} / ${r.resync.ecsWrites} (${same(r.resync)}) |`,
    `| leases lost | ${r.onboarding.leaseLosses} | ${r.resync.leaseLosses} |`,
  ];
  return lines.join("\n");
}

function memLine(p: MemoryPoint): string {
  return `RSS ${p.rssMiB} MiB, heap used ${p.heapUsedMiB} of ${p.heapTotalMiB} MiB, external ${p.externalMiB} MiB, array buffers ${p.arrayBuffersMiB} MiB; CPU so far ${p.cpuUserMs} ms user + ${p.cpuSystemMs} ms system`;
}

function phaseLine(p: SplitPhase): string {
  return (
    `${p.reconciles} reconciles (${byCount(p.results, 9)}); ECS ${p.ecsReads} reads + ${p.ecsWrites} writes, ${same(p)}; ` +
    `${p.statusWrites} status writes, ${p.otherWrites} other writes; leases lost ${p.leaseLosses}; ` +
    `CPU: controller process ${secs(p.controllerCpuMs)}, this process ${secs(p.parentCpuMs)}; ${p.roundTrips} IPC round trips`
  );
}

/** Whether what the controller sent is what the fake served, action by action. */
function same(p: SplitPhase): string {
  const a = Object.entries(p.ecs);
  const equal = a.length === Object.keys(p.ecsSent).length && a.every(([k, v]) => p.ecsSent[k] === v);
  return equal ? "sent = served" : "SENT != SERVED";
}

function byCount(counts: Readonly<Record<string, number>>, top: number): string {
  const entries = Object.entries(counts).sort(([, x], [, y]) => y - x);
  if (entries.length === 0) return "none";
  const shown = entries.slice(0, top).map(([k, v]) => `${k} ${v}`);
  return entries.length > top ? `${shown.join(", ")}, ... (${entries.length - top} more)` : shown.join(", ");
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((n, v) => n + v, 0);
}

function secs(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return ms >= 100_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(1)} s`;
}
