import type { MachineInfo } from "./machine.js";
import type { PhaseFigures, ScaleResult } from "./scale-run.js";

/** The scale benchmark's results as text (console) and as the tables of BENCHMARKS.md. */

export interface ScaleReport {
  readonly machine: MachineInfo;
  readonly source: string;
  readonly runs: readonly ScaleResult[];
}

export function renderScaleText(report: ScaleReport): string {
  const out: string[] = [machineLine(report.machine), `source: ${report.source}`];
  for (const r of report.runs) {
    const o = r.options;
    const on = r.onboarding;
    const rs = r.resync;
    const m = r.memory;
    out.push(
      "",
      `== ${o.tenants} tenants (${o.mix.basic} basic / ${o.mix.advanced} advanced / ${o.mix.premium} premium), ${o.controllers} controller(s), CONCURRENCY ${o.concurrency}, ECS ${o.throttle ? "THROTTLED" : "unthrottled"} ==`,
      `1. onboarding from empty: ${secs(on.wallMs)} wall, ${on.tenantsPerSecond.toFixed(0)} tenants/s; ${on.reconciles} reconciles (${results(on)}); CPU ${secs(on.cpuMs)} = ${(on.cpuMs / o.tenants).toFixed(2)} ms per tenant (fakes, timed: ${secs(on.fakesMs)})`,
      `   ECS ${on.ecsReads} reads + ${on.ecsWrites} writes: ${byAction(on.ecs)}`,
      `   registration floor: ${on.registrationFloor.calls} RegisterTaskDefinition at 1/s after a burst of 20 = ${secs(on.registrationFloor.seconds * 1000)} (${hours(on.registrationFloor.seconds)}); floor / wall = ${ratio(on.registrationFloor.seconds * 1000, on.wallMs)}`,
      `   slowest bucket: ${on.bindingFloor.category}, ${on.bindingFloor.calls} calls = ${secs(on.bindingFloor.seconds * 1000)}`,
      `2. steady state: RSS ${m.rssMiB} MiB (${m.baselineRssMiB} MiB before the fleet existed), heap used ${m.heapUsedMiB} MiB of ${m.heapTotalMiB} MiB, ` +
        `of which the controllers ${(m.heapUsedMiB - m.heapWithoutControllersMiB).toFixed(1)} MiB${m.controllersCollected ? "" : " (NOT collected: figure unreliable)"}${m.gc ? "" : " (no --expose-gc: no GC before measuring)"}`,
      `3. one resync pass: ${secs(rs.wallMs)} wall, ${rs.reconciles} reconciles (${results(rs)}), ${rs.ecsReads} ECS reads = ${(rs.ecsReads / o.tenants).toFixed(2)} per tenant, ${rs.ecsWrites} ECS writes, ${rs.statusWrites} status writes`,
      `   reads: ${byAction(rs.ecs)}`,
      `   read floor: ${rs.ecsReads} reads at 20/s = ${secs(rs.readFloorSeconds * 1000)}; slowest read bucket ${rs.bindingFloor.category} (${rs.bindingFloor.calls} calls) = ${secs(rs.bindingFloor.seconds * 1000)}; floor / wall = ${ratio(rs.readFloorSeconds * 1000, rs.wallMs)}`,
      `   CPU per no-op reconcile: ${rs.cpuPerReconcileMs.toFixed(3)} ms; ${rs.cpuPerReconcileWithoutFakesMs.toFixed(3)} ms without the fakes (their ${rs.fakesReplay.calls} calls replayed alone: ${secs(rs.fakesReplay.cpuMs)} CPU)`,
      `4. per controller (onboarding | resync): ${Object.entries(on.perController)
        .map(
          ([h, c]) =>
            `${h} ${c.role} ${c.shards.length} shards ${c.reconciles} reconciles ${c.ecs} ECS | ${rs.perController[h]?.reconciles ?? 0} reconciles ${rs.perController[h]?.ecs ?? 0} ECS`,
        )
        .join("; ")}; leases lost ${on.leaseLosses + rs.leaseLosses}`,
      ...(r.takeover === undefined
        ? []
        : [
            `5. ${r.takeover.dead} (controller lease holder) dies: its ${r.takeover.shardsMoved} shards held by others after ${secs(r.takeover.leaseTakenAfterMs)} (LEASE_SECONDS ${o.leaseSeconds ?? 15}), ${r.takeover.newLeader} holds the pool; ` +
              `they reconcile its ${r.takeover.keys} keys with cold caches: ${r.takeover.reconciles} reconciles after ${secs(r.takeover.wallMs)}, ${r.takeover.ecsReads} ECS reads (${byAction(r.takeover.ecs)}), ` +
              `${r.takeover.ecsWrites} ECS writes, ${r.takeover.statusWrites} status writes; read floor ${secs((r.takeover.ecsReads / 20) * 1000)}`,
          ]),
      `   load average ${r.load[0].toFixed(1)} -> ${r.load[1].toFixed(1)} on ${report.machine.nproc} cores; converged: ${r.converged.ready} Ready, ${r.converged.servicesSteady} of ${r.converged.servicesExpected} services steady, ${r.converged.premiumClusters} premium clusters, ${r.converged.leaders} leader(s)`,
    );
  }
  return out.join("\n");
}

/** The tables of BENCHMARKS.md "Scale: 10,000 tenants", one column per run. */
export function renderScaleMarkdown(report: ScaleReport): string {
  const runs = report.runs;
  const head = `| | ${runs.map((r) => `${r.options.controllers} controller${r.options.controllers === 1 ? "" : "s"}`).join(" | ")} |`;
  const rule = `|---|${runs.map(() => "---:").join("|")}|`;
  const row = (label: string, cell: (r: ScaleResult) => string) => `| ${label} | ${runs.map(cell).join(" | ")} |`;
  const first = runs[0];
  const lines = [
    machineLine(report.machine),
    `source: ${report.source}`,
    first === undefined
      ? ""
      : `fleet: ${first.options.tenants} tenants (${first.options.mix.basic} basic / ${first.options.mix.advanced} advanced / ${first.options.mix.premium} premium), CONCURRENCY ${first.options.concurrency}, ECS ${first.options.throttle ? "throttled" : "unthrottled"}`,
    "",
    head,
    rule,
    row("**Onboarding from empty**: wall", (r) => secs(r.onboarding.wallMs)),
    row("tenants/s", (r) => r.onboarding.tenantsPerSecond.toFixed(0)),
    row("reconciles", (r) => String(r.onboarding.reconciles)),
    row("CPU (per tenant)", (r) => `${secs(r.onboarding.cpuMs)} (${(r.onboarding.cpuMs / r.options.tenants).toFixed(2)} ms)`),
    row("ECS reads", (r) => byAction(pick(r.onboarding, true))),
    row("ECS writes", (r) => byAction(pick(r.onboarding, false))),
    row(
      "registration floor (1/s after 20)",
      (r) => `${secs(r.onboarding.registrationFloor.seconds * 1000)} (${hours(r.onboarding.registrationFloor.seconds)})`,
    ),
    row("floor / wall", (r) => ratio(r.onboarding.registrationFloor.seconds * 1000, r.onboarding.wallMs)),
    row("**Steady state**: RSS (before the fleet)", (r) => `${r.memory.rssMiB} MiB (${r.memory.baselineRssMiB})`),
    row(
      "heap used / of which controllers",
      (r) => `${r.memory.heapUsedMiB} / ${(r.memory.heapUsedMiB - r.memory.heapWithoutControllersMiB).toFixed(1)} MiB`,
    ),
    row("**One resync pass**: wall", (r) => secs(r.resync.wallMs)),
    row("reconciles", (r) => String(r.resync.reconciles)),
    row("ECS reads (per tenant)", (r) => `${r.resync.ecsReads} (${(r.resync.ecsReads / r.options.tenants).toFixed(2)})`),
    row("by action", (r) => byAction(r.resync.ecs)),
    row("ECS writes / status writes / events", (r) => `${r.resync.ecsWrites} / ${r.resync.statusWrites} / ${sumOf(r.resync.events)}`),
    row("read floor at 20 reads/s", (r) => secs(r.resync.readFloorSeconds * 1000)),
    row("slowest read bucket", (r) => `${r.resync.bindingFloor.category} ${secs(r.resync.bindingFloor.seconds * 1000)}`),
    row("floor / wall", (r) => ratio(r.resync.readFloorSeconds * 1000, r.resync.wallMs)),
    row(
      "CPU per no-op reconcile (without fakes)",
      (r) => `${r.resync.cpuPerReconcileMs.toFixed(3)} ms (${r.resync.cpuPerReconcileWithoutFakesMs.toFixed(3)})`,
    ),
    row("**Controllers**: reconciles per controller, resync", (r) =>
      Object.entries(r.resync.perController)
        .map(([, c]) => `${c.reconciles} (${c.shards.length} shards${c.role === "leader" ? " + pool" : ""})`)
        .join(", "),
    ),
    row("leases lost", (r) => String(r.onboarding.leaseLosses + r.resync.leaseLosses)),
    row("**Controller killed** (pool holder): its shards held by others after", (r) =>
      r.takeover ? `${secs(r.takeover.leaseTakenAfterMs)} (${r.takeover.shardsMoved} shards)` : "–",
    ),
    row("its keys reconciled by their new owners after", (r) =>
      r.takeover ? `${secs(r.takeover.wallMs)} (${r.takeover.keys} keys)` : "–",
    ),
    row("their ECS reads (cold caches)", (r) => (r.takeover ? `${r.takeover.ecsReads}: ${byAction(r.takeover.ecs)}` : "–")),
    row("their writes (ECS / status)", (r) => (r.takeover ? `${r.takeover.ecsWrites} / ${r.takeover.statusWrites}` : "–")),
    row("load average (start → end)", (r) => `${r.load[0].toFixed(1)} → ${r.load[1].toFixed(1)}`),
  ];
  return lines.join("\n");
}

function pick(p: PhaseFigures, reads: boolean): Record<string, number> {
  const readActions = /^(Describe|List)/;
  return Object.fromEntries(Object.entries(p.ecs).filter(([a]) => readActions.test(a) === reads));
}

export function machineLine(m: MachineInfo): string {
  return `machine: ${m.nproc} cpu (${m.cpuModel}), ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}; ${m.date}`;
}

function results(p: PhaseFigures): string {
  return Object.entries(p.results)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}

function byAction(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? "none" : entries.map(([k, v]) => `${k} ${v}`).join(", ");
}

function sumOf(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((n, v) => n + v, 0);
}

function secs(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  return ms >= 100_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function hours(seconds: number): string {
  return seconds >= 3600 ? `${(seconds / 3600).toFixed(1)} h` : `${(seconds / 60).toFixed(1)} min`;
}

function ratio(floorMs: number, wallMs: number): string {
  return `${(floorMs / wallMs).toFixed(0)}x`;
}
