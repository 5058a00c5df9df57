import { z } from "zod";
import { DynamoRolloutStore } from "../../providers/rollout-store.js";
import { changesFor, describeChanges, versionsOf } from "../../rollouts/changes.js";
import type { Rollout, Wave } from "../../rollouts/model.js";
import { command, CommandRefused, progress } from "../../rollouts/planner.js";
import { POOL_KEY } from "../../tiers/desired.js";
import type { Command } from "../command.js";
import { UsageError } from "../command.js";
import { createCliClients, explainAwsError, loadClientConfig, outputSchema, parseCommandArgs } from "../client-config.js";
import { fail, formatAge, renderData, renderTable } from "../format.js";
import { who } from "./catalogue.js";

const usage = `Usage: tenantctl rollout status [-o text|json|yaml]
       tenantctl rollout pause | resume | abort

A changed app catalogue (tenantctl catalogue set) reaches the fleet in waves:
tenants by their record's ring (lower first, none last) then id, the pool in
a wave of its own after the first ring; each wave bakes (ROLLOUT_BAKE_SECONDS)
and its tenants must still be healthy before the next starts; more failed
tenants than ROLLOUT_MAX_FAILURES halt it. A failed tenant is rolled back by
ECS's circuit breaker and stays on its previous versions.

  status   the rollout: state (Progressing, Paused, Halted, Completed), the
           versions, each wave, and the tenants done, failed and pending
  pause    no new wave starts (the one under way finishes)
  resume   goes on; failures so far no longer count against the budget
           (after an abort: starts again from the first wave)
  abort    every tenant returns to its previous versions; the rollout halts

Options:
  -o, --output FORMAT   (status) text (default), json or yaml`;

const options = { output: { type: "string", short: "o" } } as const;
const flagsSchema = z.object({ output: outputSchema.optional() });
const VERBS = ["status", "pause", "resume", "abort"] as const;

export const rolloutCommand: Command = {
  name: "rollout",
  summary: "Follow or steer the fleet rollout of the app catalogue (status, pause, resume, abort)",
  usage,
  async run(args, io) {
    const { flags, positionals } = parseCommandArgs(args, options, flagsSchema, { min: 1, max: 1, names: VERBS.join(", ") });
    const verb = positionals[0] as (typeof VERBS)[number];
    if (!(VERBS as readonly string[]).includes(verb)) throw new UsageError(`unknown subcommand "${verb}": use ${VERBS.join(", ")}`);
    const config = await loadClientConfig(io.env);
    const clients = createCliClients(config, io.env);
    const store = new DynamoRolloutStore(clients.dynamodb, config.leaseTable);
    try {
      if (verb === "status") {
        const [rollout, catalogue] = await Promise.all([store.readRollout(), store.readCatalogue()]);
        if (rollout === undefined)
          return fail(io, "rollout", `no rollout state in ${store.table} yet: the controller writes it when it starts`);
        const output = flags.output ?? "text";
        const view = statusView(
          rollout,
          catalogue.kind === "invalid" ? catalogue.problem : undefined,
          catalogue.kind === "valid" ? catalogue.hash : undefined,
        );
        io.stdout.write(output === "text" ? describeRollout(view, new Date()) : renderData(view, output));
        return 0;
      }
      for (let attempt = 1; ; attempt++) {
        const current = await store.readRollout();
        if (current === undefined) return fail(io, "rollout", `no rollout state in ${store.table} yet`);
        const next = command(current, verb, new Date(), who());
        if (await store.writeRollout(next, current.version)) {
          io.stdout.write(`rollout ${next.id}: ${next.state}${next.aborted === true ? " (aborted)" : ""}: ${next.reason}\n`);
          return 0;
        }
        if (attempt >= 3) return fail(io, "rollout", "the rollout kept changing while this command ran; try again");
      }
    } catch (err) {
      if (err instanceof CommandRefused) return fail(io, "rollout", err.message);
      return fail(io, "rollout", explainAwsError(err, config, `rollout ${verb}`));
    } finally {
      clients.destroy();
    }
  },
};

export type WaveState = "Pending" | "Deploying" | "Baking" | "Checking" | "Baked";

export interface RolloutStatusView {
  readonly id: string;
  readonly state: Rollout["state"];
  readonly aborted: boolean;
  readonly reason: string;
  readonly from: Readonly<Record<string, string>>;
  readonly to: Readonly<Record<string, string>>;
  readonly changes: string;
  readonly counts: {
    readonly total: number;
    readonly done: number;
    readonly failed: number;
    readonly pending: number;
    readonly unaffected: number;
  };
  readonly waves: readonly {
    readonly wave: number;
    readonly state: WaveState;
    readonly units: readonly string[];
    readonly done: readonly string[];
    readonly failed: readonly string[];
    readonly pending: readonly string[];
    readonly startedAt?: string;
    readonly deployedAt?: string;
    readonly bakedAt?: string;
  }[];
  readonly failed: Readonly<Record<string, { readonly at: string; readonly reason: string }>>;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** The catalogue record is newer than this rollout (the controller has not picked it up yet), or invalid. */
  readonly catalogue?: string;
}

/** What `rollout status` shows, as data (the -o json/yaml output). */
export function statusView(r: Rollout, invalidCatalogue: string | undefined, catalogueHash: string | undefined): RolloutStatusView {
  const from = r.catalogues[r.from];
  const to = r.catalogues[r.to];
  const failed = (u: string) => r.failed[u] !== undefined;
  const done = (u: string) => !failed(u) && r.done[u] !== undefined;
  return {
    id: r.id,
    state: r.state,
    aborted: r.aborted === true,
    reason: r.reason,
    from: from === undefined ? {} : versionsOf(from),
    to: to === undefined ? {} : versionsOf(to),
    changes: from === undefined || to === undefined ? "" : describeChanges(changesFor(undefined, from, to)),
    counts: { ...progress(r), unaffected: r.unaffected },
    waves: r.waves.map((w, i) => ({
      wave: i + 1,
      state: waveState(w),
      units: w.units,
      done: w.units.filter(done),
      failed: w.units.filter(failed),
      pending: w.units.filter((u) => !done(u) && !failed(u)),
      ...(w.startedAt !== undefined ? { startedAt: w.startedAt } : {}),
      ...(w.deployedAt !== undefined ? { deployedAt: w.deployedAt } : {}),
      ...(w.bakedAt !== undefined ? { bakedAt: w.bakedAt } : {}),
    })),
    failed: Object.fromEntries(Object.entries(r.failed).map(([u, f]) => [u, { at: f.at, reason: f.reason }])),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    ...(invalidCatalogue !== undefined
      ? { catalogue: `the catalogue record is invalid and ignored: ${invalidCatalogue}` }
      : catalogueHash !== undefined && catalogueHash !== r.to
        ? { catalogue: "the catalogue record changed; the controller starts a new rollout at its next step" }
        : {}),
  };
}

function waveState(w: Wave): WaveState {
  if (w.startedAt === undefined) return "Pending";
  if (w.bakedAt !== undefined) return "Baked";
  if (w.checkedAt !== undefined) return "Checking";
  if (w.deployedAt !== undefined) return "Baking";
  return "Deploying";
}

const unitName = (u: string) => (u === POOL_KEY ? "the pool" : u);

function list(units: readonly string[], max = 6): string {
  if (units.length === 0) return "-";
  const shown = units.slice(0, max).map(unitName).join(", ");
  return units.length > max ? `${shown} (+${units.length - max})` : shown;
}

export function describeRollout(v: RolloutStatusView, now: Date): string {
  const lines: string[] = [];
  const field = (label: string, value: string) => lines.push(`${`${label}:`.padEnd(11)}${value}`);
  field("Rollout", `${v.id} (${v.state}${v.aborted ? ", aborted" : ""})`);
  field("Reason", v.reason);
  field("Changes", v.changes === "" ? "-" : v.changes);
  const c = v.counts;
  field(
    "Tenants",
    `${c.done} done, ${c.failed} failed, ${c.pending} pending of ${c.total} (the pool counts as one); ${c.unaffected} not changed (pinned)`,
  );
  if (v.catalogue !== undefined) field("Catalogue", v.catalogue);
  lines.push(`Started ${formatAge(v.createdAt, now)} ago, updated ${formatAge(v.updatedAt, now)} ago`);
  if (v.waves.length > 0) {
    lines.push("");
    const rows = v.waves.map((w) => [
      String(w.wave),
      w.state,
      String(w.units.length),
      String(w.done.length),
      String(w.failed.length),
      w.startedAt === undefined ? "-" : `${formatAge(w.startedAt, now)} ago`,
      list(w.units),
    ]);
    lines.push(renderTable(["WAVE", "STATE", "UNITS", "DONE", "FAILED", "STARTED", "TENANTS"], rows));
  }
  const failures = Object.entries(v.failed);
  if (failures.length > 0) {
    lines.push("", "Failed:");
    lines.push(
      renderTable(
        ["TENANT", "AGE", "REASON"],
        failures.map(([u, f]) => [unitName(u), formatAge(f.at, now), f.reason]),
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}
