import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { DescribeServicesCommand } from "@aws-sdk/client-ecs";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { premiumClusterName, serviceName } from "../../src/tiers/naming.js";
import { APP_NAMES } from "../../src/tenants/record.js";
import { eventually } from "../support/event-sink.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { freePort } from "../support/moto.js";
import { parseExposition, sample } from "../support/prom-text.js";
import { spawnCli, type CliProcess } from "../support/spawn.js";

/**
 * `tenantctl controller` as the container runs it: its HTTP port (health,
 * readiness, Prometheus metrics) and its graceful shutdown.
 */
let cloud: TestCloud;
const procs: CliProcess[] = [];
beforeAll(async () => {
  cloud = await startTestCloud({ speed: 200 });
});
afterEach(() => {
  cloud.control.setFaults([]);
  for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill("SIGKILL");
});
afterAll(async () => {
  await cloud?.stop();
});

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text() };
  } catch {
    return { status: 0, text: "" };
  }
}
async function put(record: Record<string, unknown>) {
  await cloud.clients.dynamodb.send(new PutItemCommand({ TableName: cloud.config.tenantsTable, Item: marshall(record) }));
}
async function phaseOf(tenantId: string): Promise<string | undefined> {
  const res = await cloud.clients.dynamodb.send(
    new GetItemCommand({ TableName: cloud.config.tenantsTable, Key: marshall({ tenantId }), ConsistentRead: true }),
  );
  return res.Item ? (unmarshall(res.Item)["status"] as { phase?: string } | undefined)?.phase : undefined;
}
async function leaseHolder(): Promise<string | undefined> {
  const res = await cloud.clients.dynamodb.send(
    new GetItemCommand({ TableName: cloud.config.leaseTable, Key: marshall({ pk: "lease#controller" }), ConsistentRead: true }),
  );
  return res.Item ? (unmarshall(res.Item)["holder"] as string | undefined) : undefined;
}
async function controller(extra: Record<string, string> = {}): Promise<{ proc: CliProcess; port: number }> {
  const port = await freePort();
  const proc = spawnCli(["controller"], { ...cloud.env, HTTP_PORT: String(port), LEASE_SECONDS: "5", LOG_LEVEL: "debug", ...extra });
  procs.push(proc);
  return { proc, port };
}

describe("tenantctl controller over HTTP", () => {
  it("is ready only after its initial sync, and exposes metrics that count", async () => {
    // A slow first Scan holds the initial sync back long enough to see /readyz refuse.
    cloud.control.setFaults([{ service: "dynamodb", action: "Scan", latencyMs: 2500, count: 1 }]);
    const { proc, port } = await controller({ EMF_METRICS: "true", EMF_INTERVAL_SECONDS: "1" });
    await eventually(async () => ((await get(port, "/healthz")).status === 200 ? true : undefined), "/healthz");
    expect((await get(port, "/readyz")).status).toBe(503);
    await eventually(
      async () => ((await get(port, "/readyz")).status === 200 ? true : undefined),
      "/readyz after the initial sync",
      15_000,
    );

    // One throttle the SDK retries: counted as a throttled attempt, the call itself ends ok.
    cloud.control.setFaults([
      { service: "ecs", action: "CreateService", errorCode: "ThrottlingException", message: "Rate exceeded", count: 1 },
    ]);
    await put({ tenantId: "metrics-1", tier: "advanced", tenantName: "Metrics" });
    await eventually(async () => ((await phaseOf("metrics-1")) === "Ready" ? true : undefined), "metrics-1 Ready");

    const scrape = await get(port, "/metrics");
    expect(scrape.status).toBe(200);
    const m = parseExposition(scrape.text);
    expect(sample(m, "tenant_operator_reconcile_total", "tenant_operator_reconcile_total", { result: "done" })).toBeGreaterThanOrEqual(1);
    expect(sample(m, "tenant_operator_reconcile_total", "tenant_operator_reconcile_total", { result: "requeue" })).toBeGreaterThanOrEqual(
      1,
    );
    expect(
      sample(m, "tenant_operator_reconcile_duration_seconds", "tenant_operator_reconcile_duration_seconds_count"),
    ).toBeGreaterThanOrEqual(2);
    expect(sample(m, "tenant_operator_queue_depth", "tenant_operator_queue_depth")).toBeGreaterThanOrEqual(0);
    expect(
      sample(m, "tenant_operator_aws_calls_total", "tenant_operator_aws_calls_total", {
        service: "ecs",
        action: "CreateService",
        outcome: "ok",
      }),
    ).toBeGreaterThanOrEqual(4);
    expect(
      sample(m, "tenant_operator_aws_attempts_total", "tenant_operator_aws_attempts_total", {
        service: "ecs",
        action: "CreateService",
        outcome: "throttled",
      }),
    ).toBe(1);
    expect(sample(m, "tenant_operator_tenants", "tenant_operator_tenants", { phase: "Ready" })).toBeGreaterThanOrEqual(1);
    expect(sample(m, "tenant_operator_leader", "tenant_operator_leader")).toBe(1);
    // controller-runtime's workqueue series, for the tenant queue.
    const q = { name: "tenant" };
    expect(sample(m, "workqueue_adds_total", "workqueue_adds_total", q)).toBeGreaterThanOrEqual(2);
    expect(sample(m, "workqueue_work_duration_seconds", "workqueue_work_duration_seconds_count", q)).toBeGreaterThanOrEqual(2);
    expect(sample(m, "workqueue_queue_duration_seconds", "workqueue_queue_duration_seconds_count", q)).toBeGreaterThanOrEqual(2);
    expect(sample(m, "workqueue_retries_total", "workqueue_retries_total", q)).toBeGreaterThanOrEqual(1); // its requeue while ECS rolled out
    expect(sample(m, "workqueue_depth", "workqueue_depth", q)).toBeGreaterThanOrEqual(0);
    expect(sample(m, "workqueue_unfinished_work_seconds", "workqueue_unfinished_work_seconds", q)).toBeGreaterThanOrEqual(0);
    expect(m.has("workqueue_longest_running_processor_seconds")).toBe(true);
    // Reading the stream (caught up long before the 60 s it would take to look stale) and resynced at start.
    expect(sample(m, "tenant_operator_stream_lag_seconds", "tenant_operator_stream_lag_seconds")).toBeLessThan(60);
    expect(sample(m, "tenant_operator_resync_age_seconds", "tenant_operator_resync_age_seconds")).toBeGreaterThan(0);
    expect(
      sample(m, "tenant_operator_tenants_phase_oldest_seconds", "tenant_operator_tenants_phase_oldest_seconds", { phase: "Ready" }),
    ).toBeGreaterThanOrEqual(0);
    expect(sample(m, "tenant_operator_tenants_stuck", "tenant_operator_tenants_stuck")).toBe(0);

    // EMF lines on stdout, bare (not inside a log line), one a second, the leader's with its gauges.
    const emf = await proc.waitForLine((l) => typeof l["_aws"] === "object" && "ResyncAgeSeconds" in l, 10_000);
    expect(emf).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: "ECSTenantOperator", Dimensions: [["Operator"]] }] },
      Operator: cloud.config.namePrefix,
      TenantsStuck: 0,
    });
    expect(typeof emf["StreamLagSeconds"]).toBe("number");
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    // Across the lines (the last one written at shutdown), every reconcile is counted once.
    const lines = proc.lines().filter((l) => typeof l["_aws"] === "object");
    const reconciles = lines.reduce((n, l) => n + (typeof l["Reconciles"] === "number" ? l["Reconciles"] : 0), 0);
    expect(reconciles).toBe(proc.lines().filter((l) => l["msg"] === "reconciled").length);
  });

  it("on SIGTERM during a reconcile, finishes it, releases the lease and exits 0", async () => {
    const { proc, port } = await controller({ HOLDER_ID: "sigterm-test" });
    await eventually(async () => ((await get(port, "/readyz")).status === 200 ? true : undefined), "ready");
    // Slow CreateService calls keep the premium tenant's apply in flight when the signal comes.
    cloud.control.setFaults([{ service: "ecs", action: "CreateService", latencyMs: 600 }]);
    await put({ tenantId: "sigterm-1", tier: "premium", tenantName: "Sigterm" });
    await proc.waitForLine((l) => l["msg"] === "applying plan" && l["key"] === "sigterm-1", 20_000);
    expect(await leaseHolder()).toBe("sigterm-test");
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);

    // The reconcile in flight ran to its end: every service of its plan exists.
    const cluster = premiumClusterName(cloud.config.namePrefix, "sigterm-1");
    const res = await cloud.clients.ecs.send(
      new DescribeServicesCommand({ cluster, services: APP_NAMES.map((a) => serviceName(cloud.config.namePrefix, "sigterm-1", a)) }),
    );
    expect(res.services?.filter((s) => s.status === "ACTIVE")).toHaveLength(4);
    expect(proc.lines().some((l) => l["msg"] === "reconciled" && l["key"] === "sigterm-1")).toBe(true);
    // The lease is released, not left to expire.
    expect(await leaseHolder()).toBeUndefined();
  });
});
