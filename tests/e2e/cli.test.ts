import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { ListRulesCommand, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { ListQueuesCommand } from "@aws-sdk/client-sqs";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError, type Command, type Io } from "../../src/cli/command.js";
import { applyCommand } from "../../src/cli/commands/apply.js";
import { deleteCommand } from "../../src/cli/commands/delete.js";
import { describeCommand } from "../../src/cli/commands/describe.js";
import { eventsCommand } from "../../src/cli/commands/events.js";
import { getCommand } from "../../src/cli/commands/get.js";
import { listCommand } from "../../src/cli/commands/list.js";
import { closeViewer, openViewer, viewerPrefix } from "../../src/cli/events-tail.js";
import { createCliClients, loadClientConfig, type CliClients } from "../../src/cli/client-config.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";

/**
 * The operator's commands against a bootstrapped local AWS (moto + local ECS
 * scheduler). Most tests call the command objects in process with captured
 * output (fast); the last ones run the CLI as a separate process.
 */

const BUS = "tenant-events";
const ROOT = resolve(import.meta.dirname, "../..");

let cloud: TestCloud;
let env: Record<string, string>;
let dir: string;

beforeAll(async () => {
  cloud = await startTestCloud({ env: { EVENT_BUS_NAME: BUS } });
  env = { ...cloud.env, COLUMNS: "200" };
  dir = await mkdtemp(join(tmpdir(), "tenantctl-e2e-"));
});

afterAll(async () => {
  await cloud?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(
  command: Command,
  args: readonly string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  return start(command, args, options).done;
}

/** A command running in process, with its output so far: for commands that wait (--follow) while the test acts. */
function start(
  command: Command,
  args: readonly string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): { readonly stderr: () => string; readonly done: Promise<Ran> } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const io: Io = { stdout, stderr, stdin: Readable.from([options.stdin ?? ""]), env: { ...env, ...options.env } };
  const done = command.run(args, io).then((code) => ({ code, stdout: out, stderr: err }));
  return { stderr: () => err, done };
}

const documents = () => DynamoDBDocumentClient.from(cloud.clients.dynamodb);

async function stored(tenantId: string): Promise<Record<string, unknown> | undefined> {
  return (await documents().send(new GetCommand({ TableName: cloud.config.tenantsTable, Key: { tenantId }, ConsistentRead: true }))).Item;
}

/** What the controller would write: the status attribute alone. */
async function writeStatus(tenantId: string, status: Record<string, unknown>): Promise<void> {
  await documents().send(
    new UpdateCommand({
      TableName: cloud.config.tenantsTable,
      Key: { tenantId },
      UpdateExpression: "SET #s = :s",
      ExpressionAttributeNames: { "#s": "status" },
      ExpressionAttributeValues: { ":s": status },
    }),
  );
}

const readyStatus = (message = "all services steady") => ({
  phase: "Ready",
  message,
  observedSpecHash: "0123456789abcdef",
  lastReconciledAt: new Date(Date.now() - 90_000).toISOString(),
  conditions: [
    {
      type: "Valid",
      status: "True",
      reason: "SpecValid",
      message: "record is valid",
      lastTransitionTime: new Date(Date.now() - 300_000).toISOString(),
    },
    {
      type: "Ready",
      status: "True",
      reason: "ServicesSteady",
      message: "4/4 services steady",
      lastTransitionTime: new Date(Date.now() - 90_000).toISOString(),
    },
  ],
  serviceArns: ["arn:aws:ecs:us-east-1:123456789012:service/saas-advanced/acme-orders"],
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe("apply", () => {
  it("creates every record of a YAML list and reports each", async () => {
    const path = await file(
      "two.yaml",
      `- tenantId: acme\n  tier: ADVANCED\n  tenantName: Acme\n  email: ops@acme.test\n  apps:\n    orders: { desiredCount: 2, version: "1.4" }\n- tenantId: globex\n  tier: basic\n  tenantName: Globex\n`,
    );
    const r = await run(applyCommand, ["-f", path]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("tenant/acme created\ntenant/globex created\n");
    // The file's attributes, and the list of them apply keeps to know later what it may remove.
    expect(await stored("acme")).toEqual({
      tenantId: "acme",
      tier: "ADVANCED",
      tenantName: "Acme",
      email: "ops@acme.test",
      apps: { orders: { desiredCount: 2, version: "1.4" } },
      tenantctlApplied: ["apps", "email", "tenantName", "tier"],
    });
    expect((await stored("globex"))?.["tenantName"]).toBe("Globex");
  });

  it("reads JSON from standard input", async () => {
    const r = await run(applyCommand, ["-f", "-", "-o", "json"], {
      stdin: JSON.stringify({ tenantId: "initech", tier: "premium", tenantName: "Initech" }),
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ dryRun: false, results: [{ tenantId: "initech", result: "created" }] });
    expect((await stored("initech"))?.["tier"]).toBe("premium");
  });

  it("writes nothing when one record is invalid, and names the field", async () => {
    const path = await file(
      "mixed.json",
      JSON.stringify([
        { tenantId: "valid-one", tier: "basic", tenantName: "V" },
        { tenantId: "bad-one", tier: "gold", tenantName: "B" },
      ]),
    );
    const r = await run(applyCommand, ["-f", path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("record 2 (tenant bad-one)");
    expect(r.stderr).toContain("tier must be basic, advanced or premium");
    expect(r.stderr).toContain("nothing was written");
    expect(r.stdout).toBe("");
    expect(await stored("valid-one")).toBeUndefined();
    expect(await stored("bad-one")).toBeUndefined();
  });

  it("rejects a file that is not JSON or YAML, and a bad flag as a usage error", async () => {
    const path = await file("broken.yaml", "tenantId: [unclosed\n");
    const r = await run(applyCommand, ["-f", path]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not valid JSON or YAML");
    await expect(run(applyCommand, ["-f", path, "--bogus"])).rejects.toThrow(UsageError);
    await expect(run(applyCommand, ["-f", path, "-o", "xml"])).rejects.toThrow(/--output: must be text, json or yaml/);
    await expect(run(applyCommand, [])).rejects.toThrow(/--filename/);
  });

  it("re-apply keeps the controller's status and attributes others own; spec fields dropped from the file are removed", async () => {
    await writeStatus("acme", readyStatus());
    await documents().send(
      new UpdateCommand({
        TableName: cloud.config.tenantsTable,
        Key: { tenantId: "acme" },
        UpdateExpression: "SET sbtaws_tenantConfig = :c",
        ExpressionAttributeValues: { ":c": "from-sbt" },
      }),
    );
    const same = await file(
      "acme.yaml",
      `tenantId: acme\ntier: ADVANCED\ntenantName: Acme\nemail: ops@acme.test\napps:\n  orders: { version: "1.4", desiredCount: 2 }\nstatus: { phase: Pending }\n`,
    );
    const unchanged = await run(applyCommand, ["-f", same]);
    expect(unchanged.stdout).toBe("tenant/acme unchanged\n");

    const edited = await file(
      "acme2.yaml",
      `tenantId: acme\ntier: ADVANCED\ntenantName: Acme Corp\napps:\n  orders: { desiredCount: 3, version: "1.4" }\n`,
    );
    const dry = await run(applyCommand, ["-f", edited, "--dry-run"]);
    expect(dry.stdout).toBe("tenant/acme configured (dry run)\n");
    expect((await stored("acme"))?.["tenantName"]).toBe("Acme");

    const configured = await run(applyCommand, ["-f", edited]);
    expect(configured.stdout).toBe("tenant/acme configured\n");
    const item = await stored("acme");
    expect(item?.["tenantName"]).toBe("Acme Corp");
    expect(item?.["apps"]).toEqual({ orders: { desiredCount: 3, version: "1.4" } });
    expect(item?.["email"]).toBeUndefined();
    expect(item?.["sbtaws_tenantConfig"]).toBe("from-sbt");
    expect(item?.["status"]).toMatchObject({ phase: "Ready", message: "all services steady", observedSpecHash: "0123456789abcdef" });
  });
});

describe("get", () => {
  it("shows spec and status for a person", async () => {
    const r = await run(getCommand, ["acme"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Tenant:\s+acme$/m);
    expect(r.stdout).toMatch(/^Name:\s+Acme Corp$/m);
    expect(r.stdout).toMatch(/^Tier:\s+advanced$/m);
    expect(r.stdout).toMatch(/^ {2}Phase:\s+Ready$/m);
    expect(r.stdout).toMatch(/^ {2}Message:\s+all services steady$/m);
    expect(r.stdout).toMatch(/^ {2}Last reconciled:\s+\S+ \(90s ago\)$/m);
    // The test wrote a hash that is not the record's: get says the controller is behind.
    expect(r.stdout).toMatch(/Observed spec hash:\s+0123456789abcdef \(stale/);
    expect(r.stdout).toMatch(/^ {4}TYPE\s+STATUS\s+REASON\s+AGE\s+MESSAGE$/m);
    expect(r.stdout).toMatch(/^ {4}Ready\s+True\s+ServicesSteady\s+90s\s+4\/4 services steady$/m);
    expect(r.stdout).toContain("arn:aws:ecs:us-east-1:123456789012:service/saas-advanced/acme-orders");
    expect(r.stdout).toMatch(/^ {2}orders\s+3\s+1\.4$/m);
  });

  it("-o json gives the stored item", async () => {
    const r = await run(getCommand, ["acme", "-o", "json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(await stored("acme"));
  });

  it("a missing tenant exits 1; a malformed id is a usage error", async () => {
    const r = await run(getCommand, ["nobody"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("tenant/nobody not found in table tenants");
    await expect(run(getCommand, ["bad id!"])).rejects.toThrow(UsageError);
    await expect(run(getCommand, [])).rejects.toThrow(/missing tenant ID/);
  });

  it("a bad environment variable is named", async () => {
    await expect(run(getCommand, ["acme"], { env: { AWS_ENDPOINT_URL: "not a url" } })).rejects.toThrow(/AWS_ENDPOINT_URL must be a URL/);
  });
});

describe("list", () => {
  it("-o json lists every tenant sorted by id", async () => {
    const r = await run(listCommand, ["-o", "json"]);
    expect(r.code).toBe(0);
    const items = JSON.parse(r.stdout) as { tenantId: string }[];
    expect(items.map((i) => i.tenantId)).toEqual(["acme", "globex", "initech"]);
  });

  it("prints a table with phase, age and message cut to the width", async () => {
    await writeStatus("globex", { ...readyStatus("x".repeat(300)), phase: "Provisioning" });
    const r = await run(listCommand, []);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+TIER\s+PHASE\s+AGE\s+MESSAGE$/);
    expect(lines[1]).toMatch(/^acme\s+Acme Corp\s+advanced\s+Ready\s+90s\s+all services steady$/);
    expect(lines[2]).toMatch(/^globex\s+Globex\s+basic\s+Provisioning\s+90s\s+x+…$/);
    expect(lines[2]?.length).toBe(200);
    expect(lines[3]).toMatch(/^initech\s+Initech\s+premium\s+<none>\s+-$/);
  });

  it("a missing table exits 1 naming the variable to check", async () => {
    const r = await run(listCommand, [], { env: { TENANTS_TABLE: "no-such-table" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tenantctl list: scanning table no-such-table: .*TENANTS_TABLE=no-such-table/);
  });

  it("--watch prints again when a tenant changes, and stops at --watch-seconds", async () => {
    const watching = run(listCommand, ["--watch", "--watch-seconds", "3.5"]);
    await new Promise((r) => setTimeout(r, 1500));
    await writeStatus("initech", { ...readyStatus("came up"), phase: "Ready" });
    const started = Date.now();
    const r = await watching;
    expect(Date.now() - started).toBeLessThan(4000);
    expect(r.code).toBe(0);
    const tables = r.stdout.split("\n\n");
    expect(tables).toHaveLength(2);
    expect(tables[0]).toMatch(/^initech\s+Initech\s+premium\s+<none>/m);
    expect(tables[1]).toMatch(/^initech\s+Initech\s+premium\s+Ready\s+90s\s+came up$/m);
  });
});

describe("delete", () => {
  it("offboards by setting sbtaws_active=false and keeps the record", async () => {
    const r = await run(deleteCommand, ["globex"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("tenant/globex offboarding (sbtaws_active=false)\n");
    const item = await stored("globex");
    expect(item?.["sbtaws_active"]).toBe(false);
    expect(item?.["tenantName"]).toBe("Globex");
    expect((await run(deleteCommand, ["globex"])).stdout).toBe("tenant/globex already offboarding\n");
  });

  it("a missing tenant exits 1 and creates nothing", async () => {
    const r = await run(deleteCommand, ["ghost"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("tenant/ghost not found");
    expect(await stored("ghost")).toBeUndefined();
    await expect(run(deleteCommand, ["ghost", "--timeout", "soon"])).rejects.toThrow(/--timeout: must be a duration/);
  });

  it("--purge times out and keeps the record while the tenant is not Deprovisioned", async () => {
    await writeStatus("globex", { ...readyStatus("removing services"), phase: "Deprovisioning" });
    const r = await run(deleteCommand, ["globex", "--purge", "--timeout", "1500ms"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("tenant/globex phase Deprovisioning (removing services)");
    expect(r.stderr).toContain("timed out after 1.5s");
    expect(await stored("globex")).toBeDefined();
  });

  it("--purge removes the record once the controller reports Deprovisioned", async () => {
    const purging = run(deleteCommand, ["globex", "--purge", "--timeout", "20s"]);
    await new Promise((r) => setTimeout(r, 1200));
    expect(await stored("globex")).toBeDefined();
    await writeStatus("globex", { ...readyStatus("all tenant resources removed"), phase: "Deprovisioned" });
    const r = await purging;
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("tenant/globex phase Deprovisioned");
    expect(r.stdout).toMatch(/tenant\/globex purged\n$/);
    expect(await stored("globex")).toBeUndefined();
  });
});

describe("events", () => {
  const put = (detailType: string, tenantId: string, source = "sbt.application.plane") =>
    cloud.clients.eventbridge.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: BUS,
            Source: source,
            DetailType: detailType,
            Detail: JSON.stringify({
              tenantId,
              jobOutput: {
                tenantData: { tier: "basic" },
                tenantRegistrationData: { registrationStatus: detailType.endsWith("Failure") ? "Failed" : "Created" },
              },
              reason: detailType.endsWith("Failure") ? "image crashloop failed to start" : "all services steady",
              phase: detailType.endsWith("Failure") ? "Failed" : "Ready",
            }),
          },
        ],
      }),
    );

  let clients: CliClients;
  beforeAll(async () => {
    clients = createCliClients(await loadClientConfig(env), env);
  });
  afterAll(() => clients?.destroy());

  /** The viewers' queues and rules that exist now. */
  async function viewers(): Promise<{ queues: string[]; rules: string[] }> {
    const prefix = viewerPrefix(cloud.config.namePrefix);
    const queues = (await clients.sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? [];
    const rules = (await clients.eventbridge.send(new ListRulesCommand({ NamePrefix: prefix, EventBusName: BUS }))).Rules ?? [];
    return { queues: queues.map((u) => u.slice(u.lastIndexOf("/") + 1)).sort(), rules: rules.map((r) => r.Name ?? "").sort() };
  }

  async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("without --follow shows the events recorded in the tenants' status, oldest first, and takes nothing away", async () => {
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();
    await writeStatus("acme", {
      ...readyStatus(),
      recentEvents: [
        { detailType: "tenantStatusChanged", at: at(30), reason: "New -> Provisioning: creating 4 services" },
        { detailType: "sbt_aws_provisionSuccess", at: at(10), reason: "all services steady" },
      ],
    });
    const failedAt = at(20);
    await writeStatus("initech", {
      ...readyStatus(),
      recentEvents: [{ detailType: "sbt_aws_provisionFailure", at: failedAt, reason: "image crashloop" }],
    });
    const r = await run(eventsCommand, []);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\S+Z\s+tenantStatusChanged\s+tenant=acme\s+reason="New -> Provisioning: creating 4 services"$/);
    expect(lines[1]).toMatch(/^\S+Z\s+sbt_aws_provisionFailure\s+tenant=initech\s+reason="image crashloop"$/);
    expect(lines[2]).toMatch(/^\S+Z\s+sbt_aws_provisionSuccess\s+tenant=acme\s+reason="all services steady"$/);
    // Reading is all it does: another viewer sees the same, and nothing was created on the bus.
    expect((await run(eventsCommand, [])).stdout).toBe(r.stdout);
    expect(await viewers()).toEqual({ queues: [], rules: [] });

    const json = await run(eventsCommand, ["initech", "-o", "json"]);
    expect(
      json.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([{ tenantId: "initech", detailType: "sbt_aws_provisionFailure", at: failedAt, reason: "image crashloop" }]);
  });

  it("two viewers following at once both see every event; each deletes its own queue and rule when it stops", async () => {
    const a = start(eventsCommand, ["--follow", "--follow-seconds", "10", "-o", "json"]);
    const b = start(eventsCommand, ["--follow", "--follow-seconds", "10"]);
    await until(() => a.stderr().includes("following bus") && b.stderr().includes("following bus"), "both viewers to be set up");
    const during = await viewers();
    expect(during.queues).toHaveLength(2);
    expect(during.rules).toEqual(during.queues);
    await put("sbt_aws_deprovisionSuccess", "globex");
    await put("sbt_aws_provisionSuccess", "elsewhere", "sbt.control.plane"); // another source: not ours
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    const events = ra.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { "detail-type": string; source: string; detail: { tenantId: string } });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      "detail-type": "sbt_aws_deprovisionSuccess",
      source: "sbt.application.plane",
      detail: { tenantId: "globex" },
    });
    expect(rb.stdout).toMatch(
      /^\S+Z\s+sbt_aws_deprovisionSuccess\s+tenant=globex\s+registrationStatus=Created\s+phase=Ready\s+reason="all services steady"\n$/,
    );
    expect(await viewers()).toEqual({ queues: [], rules: [] });
  });

  it("a viewer that died is swept by the next one once expired; a live viewer's queue is left alone", async () => {
    const options = { namePrefix: cloud.config.namePrefix, busName: BUS, source: cloud.config.eventSource };
    // Opened two hours ago and never extended or closed: its process was killed.
    const dead = await openViewer(clients, { ...options, now: new Date(Date.now() - 2 * 3_600_000) });
    const alive = await openViewer(clients, options);
    try {
      const r = await run(eventsCommand, ["--follow-seconds", "1"]);
      expect(r.code).toBe(0);
      const left = await viewers();
      expect(left.queues).toEqual([alive.queueName]);
      expect(left.rules).toEqual([alive.ruleName]);
      expect(left.queues).not.toContain(dead.queueName);
    } finally {
      await closeViewer(clients, BUS, alive);
    }
    expect(await viewers()).toEqual({ queues: [], rules: [] });
  });
});

describe("describe", () => {
  it("shows time in phase, the last error with retries and next attempt, and the recent events", async () => {
    const now = Date.now();
    await writeStatus("acme", {
      ...readyStatus("ThrottlingException: Rate exceeded"),
      phase: "Degraded",
      phaseSince: new Date(now - 600_000).toISOString(),
      lastError: {
        message: "updating service acme-orders: Rate exceeded",
        kind: "transient",
        type: "ThrottlingException",
        at: new Date(now - 30_000).toISOString(),
        retries: 3,
        nextAttemptAt: new Date(now + 3_600_000).toISOString(),
      },
      recentEvents: [{ detailType: "sbt_aws_provisionFailure", at: new Date(now - 600_000).toISOString(), reason: "Rate exceeded" }],
    });
    const r = await run(describeCommand, ["acme"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Tenant:\s+acme$/m);
    expect(r.stdout).toMatch(/^ {2}Phase:\s+Degraded \(for 10m, since \S+Z\)$/m);
    expect(r.stdout).toMatch(/^ {2}Last error:\s+ThrottlingException: updating service acme-orders: Rate exceeded$/m);
    expect(r.stdout).toMatch(/^\s+transient, 3 failed tries in a row, last 30s ago$/m);
    expect(r.stdout).toMatch(/^ {2}Next attempt:\s+\S+Z \(in 59m\)$/m);
    expect(r.stdout).toMatch(/^ {2}10m\s+sbt_aws_provisionFailure\s+Rate exceeded$/m);
    const missing = await run(describeCommand, ["nobody"]);
    expect(missing.code).toBe(1);
    await expect(run(describeCommand, [])).rejects.toThrow(/missing tenant ID/);
  });
});

describe("setup problems get their fix", () => {
  it("no endpoint listening: is npm start running?", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const r = await run(getCommand, ["acme"], { env: { AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `tenantctl get: reading tenant/acme: no AWS endpoint at http://127.0.0.1:${port}: is \`npm start\` running? (or unset AWS_ENDPOINT_URL to use AWS)\n`,
    );
  });
});

describe("the CLI as a process", () => {
  /**
   * Through the real dispatcher when the lead has registered the commands in
   * src/cli/commands/index.ts; until then through a stand-in entry point that
   * runs the same command objects with the process's stdio and exit code.
   */
  async function entry(): Promise<string[]> {
    const index = await readFile(join(ROOT, "src/cli/commands/index.ts"), "utf8");
    if (/\bapplyCommand\b/.test(index) && /\blistCommand\b/.test(index)) return [join(ROOT, "src/cli/tenantctl.ts")];
    const standIn = join(dir, "tenantctl-standin.mts");
    await writeFile(
      standIn,
      [
        `import { UsageError } from ${JSON.stringify(join(ROOT, "src/cli/command.ts"))};`,
        `import { applyCommand } from ${JSON.stringify(join(ROOT, "src/cli/commands/apply.ts"))};`,
        `import { listCommand } from ${JSON.stringify(join(ROOT, "src/cli/commands/list.ts"))};`,
        `const [name, ...rest] = process.argv.slice(2);`,
        `const command = [applyCommand, listCommand].find((c) => c.name === name)!;`,
        `try { process.exitCode = await command.run(rest, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }); }`,
        `catch (err) { if (err instanceof UsageError) { process.stderr.write(err.message + "\\n"); process.exitCode = 2; } else throw err; }`,
      ].join("\n"),
    );
    return [standIn];
  }

  // The SDK warns on every start under Node 20 (it will want 22 from 2027): silenced so stderr shows only our output.
  function spawnCli(
    args: readonly string[],
    stdin: string,
    onStdout?: (text: string, child: ChildProcess) => void,
    onStderr?: (text: string, child: ChildProcess) => void,
  ): Promise<Ran> {
    return entry().then(
      (script) =>
        new Promise((resolvePromise, reject) => {
          const child = spawn(process.execPath, ["--import", "tsx", ...script, ...args], {
            cwd: ROOT,
            env: { ...process.env, ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
            stdio: ["pipe", "pipe", "pipe"],
          });
          let stdout = "";
          let stderr = "";
          child.stdout.on("data", (d: Buffer) => {
            stdout += d.toString();
            onStdout?.(stdout, child);
          });
          child.stderr.on("data", (d: Buffer) => {
            stderr += d.toString();
            onStderr?.(stderr, child);
          });
          child.on("error", reject);
          child.on("exit", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
          child.stdin.end(stdin);
        }),
    );
  }

  it("applies from a pipe and lists as JSON, with exit codes", async () => {
    const applied = await spawnCli(["apply", "-f", "-"], "tenantId: hooli\ntier: basic\ntenantName: Hooli\n");
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toBe("tenant/hooli created\n");

    const listed = await spawnCli(["list", "-o", "json"], "");
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { tenantId: string }[]).map((i) => i.tenantId)).toContain("hooli");

    const bad = await spawnCli(["apply", "--nope"], "");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--nope");
  });

  it("apply rejects a misspelt field with its line and the field meant, exit 1, writing nothing", async () => {
    const r = await spawnCli(["apply", "-f", "-"], "tenantId: typo\ntier: basic\ntenantName: Typo\nappz:\n  orders: { desiredCount: 2 }\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('record 1 (tenant typo) line 4: unknown field "appz": did you mean "apps"?');
    expect(r.stderr).toContain("nothing was written");
    expect(await stored("typo")).toBeUndefined();
  });

  it("events --follow removes its queue and rule on Ctrl-C and on SIGTERM", async () => {
    const prefix = viewerPrefix(cloud.config.namePrefix);
    const clients = createCliClients(await loadClientConfig(env), env);
    try {
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        let queue = "";
        const r = await spawnCli(["events", "--follow"], "", undefined, (text, child) => {
          const m = /through queue (\S+)/.exec(text);
          if (queue === "" && m?.[1] !== undefined) {
            queue = m[1];
            child.kill(signal);
          }
        });
        expect(queue).toMatch(new RegExp(`^${prefix}[0-9a-f]{16}$`));
        expect(r.code).toBe(0);
        const queues = (await clients.sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? [];
        expect(queues).toEqual([]);
        const rules = (await clients.eventbridge.send(new ListRulesCommand({ NamePrefix: prefix, EventBusName: BUS }))).Rules ?? [];
        expect(rules).toEqual([]);
      }
    } finally {
      clients.destroy();
    }
  });

  it("list --watch keeps printing until Ctrl-C, then exits 0", async () => {
    let interruptedAt = 0;
    const r = await spawnCli(["list", "--watch"], "", (text, child) => {
      if (interruptedAt === 0 && text.includes("hooli")) {
        interruptedAt = Date.now();
        child.kill("SIGINT");
      }
    });
    expect(interruptedAt).toBeGreaterThan(0);
    expect(Date.now() - interruptedAt).toBeLessThan(2000);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ID\s+NAME\s+TIER\s+PHASE\s+AGE\s+MESSAGE$/m);
  });
});

describe("apply leaves SBT's attributes alone", () => {
  it("a minimal file keeps email, tenantRegistrationId and sbtaws_active=false that SBT wrote: an offboarded tenant stays offboarded", async () => {
    await documents().send(
      new PutCommand({
        TableName: cloud.config.tenantsTable,
        Item: {
          tenantId: "sbt-owned",
          tier: "BASIC",
          tenantName: "SBT",
          email: "a@sbt.test",
          tenantRegistrationId: "reg-sbt",
          sbtaws_active: false,
        },
      }),
    );
    const minimal = await file(
      "sbt-owned.yaml",
      `tenantId: sbt-owned
tier: basic
tenantName: SBT Owned
`,
    );
    const r = await run(applyCommand, ["-f", minimal]);
    expect(r.stdout).toBe("tenant/sbt-owned configured\n");
    const item = await stored("sbt-owned");
    expect(item).toMatchObject({
      tenantName: "SBT Owned",
      tier: "basic",
      email: "a@sbt.test",
      tenantRegistrationId: "reg-sbt",
      sbtaws_active: false,
    });
    // Applying the same file again changes nothing; dropping tenantName (which apply set) would remove it.
    expect((await run(applyCommand, ["-f", minimal])).stdout).toBe("tenant/sbt-owned unchanged\n");
  });
});
