import { readFile } from "node:fs/promises";
import { hostname, userInfo } from "node:os";
import { z } from "zod";
import { CatalogueError, loadCatalogue, type Catalogue } from "../../apps/catalogue.js";
import { loadCatalogueFile } from "../../operator/run-controller.js";
import { DynamoRolloutStore, RolloutConflictError } from "../../providers/rollout-store.js";
import { changesFor, describeChanges } from "../../rollouts/changes.js";
import { APP_NAMES, type AppName } from "../../tenants/record.js";
import type { Command, Io } from "../command.js";
import { UsageError } from "../command.js";
import { createCliClients, explainAwsError, loadClientConfig, outputSchema, parseCommandArgs } from "../client-config.js";
import { fail, formatAge, renderData, renderTable } from "../format.js";

const usage = `Usage: tenantctl catalogue get [-o text|json|yaml]
       tenantctl catalogue set APP=VERSION... | APP.FIELD=VALUE... | -f FILE|-

The app catalogue (images, default versions and counts) is a record in the
operator table (LEASE_TABLE), seeded from CATALOGUE_FILE or the built-in one
by the first controller. Changing it needs no redeploy: the controller rolls
a changed catalogue out to the fleet in waves (see \`tenantctl rollout status\`).
Tenants whose record pins an app's version keep it.

  get                      the catalogue, its revision, who changed it last
  set orders=1.5.0         a new default version of an app (several at once: orders=1.5.0 users=1.2.0)
  set orders.desiredCount=2 | orders.repository=REPO
                           another field of an app
  set -f catalogue.json    the whole catalogue, in CATALOGUE_FILE's format (- reads stdin)

The new catalogue is validated with the controller's own rules before it is
written, and written only if nobody changed it since it was read.

Options:
  -f, --file FILE       (set) the whole catalogue from a JSON file, or - for stdin
  -o, --output FORMAT   (get) text (default), json or yaml`;

const options = { output: { type: "string", short: "o" }, file: { type: "string", short: "f" } } as const;
const flagsSchema = z.object({ output: outputSchema.optional(), file: z.string().min(1, "must name a file, or - for stdin").optional() });

const ASSIGNMENT = /^([a-z]+)(?:\.(version|desiredCount|repository))?=(.+)$/;

export const catalogueCommand: Command = {
  name: "catalogue",
  summary: "Show or change the app catalogue; a change rolls out to the fleet in waves",
  usage,
  async run(args, io) {
    const { flags, positionals } = parseCommandArgs(args, options, flagsSchema, { min: 1, max: 20, names: "get or set" });
    const [verb, ...rest] = positionals;
    if (verb !== "get" && verb !== "set") throw new UsageError(`unknown subcommand "${verb ?? ""}": use get or set`);
    if (verb === "get" && (rest.length > 0 || flags.file !== undefined)) throw new UsageError("get takes no arguments");
    if (verb === "set" && flags.file === undefined && rest.length === 0)
      throw new UsageError("set needs APP=VERSION (e.g. orders=1.5.0), APP.FIELD=VALUE, or -f FILE");
    if (verb === "set" && flags.file !== undefined && rest.length > 0) throw new UsageError("give -f FILE or APP=VERSION, not both");
    const edits = verb === "set" ? rest.map(parseAssignment) : [];
    const config = await loadClientConfig(io.env);
    const clients = createCliClients(config, io.env);
    const store = new DynamoRolloutStore(clients.dynamodb, config.leaseTable);
    try {
      if (verb === "get") return await show(store, io, flags.output ?? "text");
      const replacement = flags.file === undefined ? undefined : await readWhole(flags.file, io);
      for (let attempt = 1; ; attempt++) {
        const current = await store.readCatalogue();
        if (current.kind === "invalid" && replacement === undefined)
          return fail(io, "catalogue", `the catalogue record is invalid (${current.problem}); replace it whole with -f FILE`);
        const base = current.kind === "valid" ? current.catalogue : await loadCatalogueFile(config.catalogueFile);
        const next = replacement ?? applyEdits(base, edits);
        try {
          await store.writeCatalogue(next, current.kind === "valid" ? current.revision : current.kind === "invalid" ? 0 : undefined, who());
        } catch (err) {
          if (err instanceof RolloutConflictError && attempt < 3) continue;
          throw err;
        }
        const changes = describeChanges(changesFor(undefined, base, next));
        io.stdout.write(
          changes === "no app changes"
            ? "catalogue unchanged\n"
            : `catalogue written: ${changes}\nThe controller rolls it out in waves; follow it with: tenantctl rollout status\n`,
        );
        return 0;
      }
    } catch (err) {
      if (err instanceof CatalogueError || err instanceof UsageError) return fail(io, "catalogue", err.message, 2);
      return fail(io, "catalogue", explainAwsError(err, config, `catalogue ${verb}`));
    } finally {
      clients.destroy();
    }
  },
};

interface Edit {
  readonly app: AppName;
  readonly field: "version" | "desiredCount" | "repository";
  readonly value: string;
}

function parseAssignment(text: string): Edit {
  const m = ASSIGNMENT.exec(text);
  if (m === null) throw new UsageError(`"${text}" is not APP=VERSION or APP.FIELD=VALUE (e.g. orders=1.5.0, orders.desiredCount=2)`);
  const [, app = "", field = "version", value = ""] = m;
  if (!(APP_NAMES as readonly string[]).includes(app)) throw new UsageError(`unknown app "${app}": apps are ${APP_NAMES.join(", ")}`);
  return { app: app as AppName, field: field as Edit["field"], value };
}

/** The edits on a catalogue, validated as a whole by the controller's rules (CatalogueError names the field). */
export function applyEdits(base: Catalogue, edits: readonly Edit[]): Catalogue {
  const apps: Record<string, Record<string, unknown>> = Object.fromEntries(Object.entries(base.apps).map(([k, v]) => [k, { ...v }]));
  for (const e of edits) {
    const app = apps[e.app] ?? {};
    app[e.field] = e.field === "desiredCount" ? (/^\d+$/.test(e.value) ? Number(e.value) : e.value) : e.value;
    apps[e.app] = app;
  }
  return loadCatalogue({ apps });
}

async function readWhole(file: string, io: Io): Promise<Catalogue> {
  let text: string;
  if (file === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    text = Buffer.concat(chunks).toString("utf8");
  } else {
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return loadCatalogue(text);
}

async function show(store: DynamoRolloutStore, io: Io, output: "text" | "json" | "yaml"): Promise<number> {
  const read = await store.readCatalogue();
  if (read.kind === "missing")
    return fail(io, "catalogue", `no catalogue record in ${store.table} yet: the controller seeds it when it starts`);
  if (output !== "text") {
    io.stdout.write(
      renderData(
        read.kind === "valid"
          ? { hash: read.hash, revision: read.revision, updatedAt: read.updatedAt, updatedBy: read.updatedBy, apps: read.catalogue.apps }
          : { invalid: read.problem, updatedAt: read.updatedAt },
        output,
      ),
    );
    return read.kind === "valid" ? 0 : 1;
  }
  if (read.kind === "invalid") return fail(io, "catalogue", `the catalogue record is invalid, and ignored until fixed: ${read.problem}`);
  const rows = APP_NAMES.map((name) => {
    const a = read.catalogue.apps[name];
    return [name, a.repository, a.version, String(a.desiredCount), `${a.cpu}/${a.memory}`];
  });
  io.stdout.write(`${renderTable(["APP", "REPOSITORY", "VERSION", "DESIRED", "CPU/MEM"], rows)}\n`);
  const when = read.updatedAt === undefined ? "" : ` ${formatAge(read.updatedAt)} ago`;
  io.stdout.write(
    `\nrevision ${read.revision} (hash ${read.hash}), changed${when}${read.updatedBy !== undefined ? ` by ${read.updatedBy}` : ""}\n`,
  );
  return 0;
}

/** Who wrote it, for the record's updatedBy. */
export function who(): string {
  let user = "someone";
  try {
    user = userInfo().username;
  } catch {
    // No user entry (some containers): keep the placeholder.
  }
  return `tenantctl (${user}@${hostname()})`;
}
