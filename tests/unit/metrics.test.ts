import { describe, expect, it } from "vitest";
import { Metrics, outcomeOf, phaseAges } from "../../src/observability/metrics.js";
import { CallCounter } from "../../src/providers/call-counter.js";
import { WorkQueue, type Timers } from "../../src/reconciler/queue.js";
import { done, failed, requeueAfter } from "../../src/reconciler/result.js";
import { PHASES } from "../../src/tenants/status.js";
import { parseExposition, sample } from "../support/prom-text.js";

describe("Metrics", () => {
  it("maps reconcile results to result labels, terminal apart from retryable failures", () => {
    expect(outcomeOf(done())).toBe("done");
    expect(outcomeOf(requeueAfter(1000, "waiting"))).toBe("requeue");
    expect(outcomeOf(failed(new Error("x")))).toBe("failed");
    expect(outcomeOf(failed(new Error("x"), true))).toBe("terminal");
  });

  it("renders every series in valid Prometheus text, with the counts observed", async () => {
    const metrics = new Metrics();
    metrics.observeReconcile(done(), 120);
    metrics.observeReconcile(done(), 40);
    metrics.observeReconcile(requeueAfter(5000, "deploying"), 300);
    metrics.observeReconcile(failed(new Error("throttled")), 2000);
    metrics.observeReconcile(failed(new Error("bad record"), true), 5);
    metrics.setQueueDepth(7);
    metrics.setTenantsByPhase({ Ready: 3, Provisioning: 2 });
    metrics.setLeader(true);

    const counter = new CallCounter();
    const detach = metrics.attachCallCounter(counter);
    const at = { service: "ecs", operation: "DescribeServices", durationMs: 3 };
    counter.record({ ...at, kind: "attempt", outcome: "throttled" });
    counter.record({ ...at, kind: "attempt", outcome: "ok" });
    counter.record({ ...at, kind: "call", outcome: "ok" });
    counter.record({ ...at, kind: "call", outcome: "ok" });
    counter.record({ ...at, operation: "CreateService", kind: "call", outcome: "throttled" });
    counter.record({ ...at, operation: "CreateService", kind: "call", outcome: "error" });
    detach();
    counter.record({ ...at, kind: "call", outcome: "ok" }); // after detach: not counted

    const text = await metrics.render();
    const families = parseExposition(text);

    expect(families.get("tenant_operator_reconcile_total")?.type).toBe("counter");
    for (const [result, n] of [
      ["done", 2],
      ["requeue", 1],
      ["failed", 1],
      ["terminal", 1],
    ] as const) {
      expect(sample(families, "tenant_operator_reconcile_total", "tenant_operator_reconcile_total", { result })).toBe(n);
    }

    const h = "tenant_operator_reconcile_duration_seconds";
    expect(families.get(h)?.type).toBe("histogram");
    expect(sample(families, h, `${h}_count`)).toBe(5);
    expect(sample(families, h, `${h}_sum`)).toBeCloseTo(2.465, 6);
    expect(sample(families, h, `${h}_bucket`, { le: "0.05" })).toBe(2); // 5 ms and 40 ms
    expect(sample(families, h, `${h}_bucket`, { le: "+Inf" })).toBe(5);

    expect(sample(families, "tenant_operator_queue_depth", "tenant_operator_queue_depth")).toBe(7);
    expect(sample(families, "tenant_operator_leader", "tenant_operator_leader")).toBe(1);

    const calls = "tenant_operator_aws_calls_total";
    expect(sample(families, calls, calls, { service: "ecs", action: "DescribeServices", outcome: "ok" })).toBe(2);
    expect(sample(families, calls, calls, { service: "ecs", action: "CreateService", outcome: "throttled" })).toBe(1);
    expect(sample(families, calls, calls, { service: "ecs", action: "CreateService", outcome: "error" })).toBe(1);
    const attempts = "tenant_operator_aws_attempts_total";
    expect(sample(families, attempts, attempts, { service: "ecs", action: "DescribeServices", outcome: "throttled" })).toBe(1);
    expect(sample(families, attempts, attempts, { service: "ecs", action: "DescribeServices", outcome: "ok" })).toBe(1);

    const tenants = "tenant_operator_tenants";
    expect(sample(families, tenants, tenants, { phase: "Ready" })).toBe(3);
    expect(sample(families, tenants, tenants, { phase: "Provisioning" })).toBe(2);
    expect(sample(families, tenants, tenants, { phase: "Failed" })).toBe(0);

    // Default process metrics are there too.
    expect(families.has("process_cpu_user_seconds_total")).toBe(true);
    expect(families.has("nodejs_heap_size_used_bytes")).toBe(true);
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it("a phase left out of the counts drops to 0 rather than keeping its old value", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.setTenantsByPhase({ Ready: 4, Degraded: 1 });
    metrics.setTenantsByPhase({ Ready: 5 });
    metrics.setLeader(false);
    const families = parseExposition(await metrics.render());
    expect(sample(families, "tenant_operator_tenants", "tenant_operator_tenants", { phase: "Degraded" })).toBe(0);
    expect(sample(families, "tenant_operator_tenants", "tenant_operator_tenants", { phase: "Ready" })).toBe(5);
    // One series per phase, each present even at 0, Suspended included.
    expect(families.get("tenant_operator_tenants")?.samples).toHaveLength(PHASES.length);
    for (const phase of PHASES)
      expect(sample(families, "tenant_operator_tenants", "tenant_operator_tenants", { phase }), phase).toBe(phase === "Ready" ? 5 : 0);
    expect(sample(families, "tenant_operator_leader", "tenant_operator_leader")).toBe(0);
    // Every result is exported at 0 before the first reconcile, so rate() has a series from the start.
    expect(sample(families, "tenant_operator_reconcile_total", "tenant_operator_reconcile_total", { result: "terminal" })).toBe(0);
    expect(families.has("process_cpu_user_seconds_total")).toBe(false);
  });

  it("two instances keep separate series (own registries, not the global one)", async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.setQueueDepth(3);
    b.setQueueDepth(9);
    expect(sample(parseExposition(await a.render()), "tenant_operator_queue_depth", "tenant_operator_queue_depth")).toBe(3);
    expect(sample(parseExposition(await b.render()), "tenant_operator_queue_depth", "tenant_operator_queue_depth")).toBe(9);
  });

  it("the parser rejects malformed text (it is strict enough to catch a broken exposition)", () => {
    expect(() => parseExposition("x_total 1\n")).toThrow(/before its TYPE/);
    expect(() => parseExposition('# TYPE x counter\nx{a="1} 1\n')).toThrow(/bad labels/);
    expect(() => parseExposition("# TYPE x counter\nx one\n")).toThrow(/bad value/);
    expect(() => parseExposition("# TYPE x counter\n# TYPE x gauge\n")).toThrow(/second TYPE/);
  });

  it("exports a named queue's workqueue_* series under controller-runtime's names, work in progress read at scrape", async () => {
    let now = 0;
    const timers: Timers = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
    const metrics = new Metrics({ defaultMetrics: false });
    const queue = new WorkQueue<string>({ timers, name: "tenant", metrics });
    const q = { name: "tenant" };
    // Every series exists at 0 before any work, so rate() and absent() behave from the first scrape.
    let m = parseExposition(await metrics.render());
    expect(sample(m, "workqueue_adds_total", "workqueue_adds_total", q)).toBe(0);
    expect(sample(m, "workqueue_retries_total", "workqueue_retries_total", q)).toBe(0);
    expect(sample(m, "workqueue_queue_duration_seconds", "workqueue_queue_duration_seconds_count", q)).toBe(0);

    queue.add("a");
    queue.add("b");
    now = 2_000;
    expect(await queue.get()).toBe("a");
    now = 2_500;
    queue.done("a");
    expect(await queue.get()).toBe("b");
    queue.addAfter("c", 10_000);
    now = 9_500; // b has been worked on for 7 s

    m = parseExposition(await metrics.render());
    expect(sample(m, "workqueue_adds_total", "workqueue_adds_total", q)).toBe(2);
    expect(sample(m, "workqueue_depth", "workqueue_depth", q)).toBe(0);
    expect(sample(m, "workqueue_retries_total", "workqueue_retries_total", q)).toBe(1);
    const lat = "workqueue_queue_duration_seconds";
    expect(m.get(lat)?.type).toBe("histogram");
    expect(sample(m, lat, `${lat}_count`, q)).toBe(2);
    expect(sample(m, lat, `${lat}_sum`, q)).toBeCloseTo(4.5, 9); // a waited 2 s, b 2.5 s
    expect(sample(m, lat, `${lat}_bucket`, { ...q, le: "1" })).toBe(0);
    expect(sample(m, lat, `${lat}_bucket`, { ...q, le: "10" })).toBe(2);
    const work = "workqueue_work_duration_seconds";
    expect(sample(m, work, `${work}_count`, q)).toBe(1);
    expect(sample(m, work, `${work}_sum`, q)).toBeCloseTo(0.5, 9);
    // client-go's buckets: 1e-8 s to 1000 s by powers of ten.
    const les = m
      .get(work)
      ?.samples.filter((x) => x.name === `${work}_bucket`)
      .map((x) => (x.labels["le"] === "+Inf" ? Infinity : Number(x.labels["le"])));
    expect(les).toEqual([1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000, Infinity]);
    expect(sample(m, "workqueue_unfinished_work_seconds", "workqueue_unfinished_work_seconds", q)).toBeCloseTo(7, 9);
    expect(sample(m, "workqueue_longest_running_processor_seconds", "workqueue_longest_running_processor_seconds", q)).toBeCloseTo(7, 9);
    queue.done("b");
    m = parseExposition(await metrics.render());
    expect(sample(m, "workqueue_unfinished_work_seconds", "workqueue_unfinished_work_seconds", q)).toBe(0);
  });

  it("computes the oldest time in each phase and the stuck tenants, settled phases never stuck", () => {
    const now = 10_000_000;
    const ages = phaseAges(
      [
        { phase: "Provisioning", since: now - 1_000_000 }, // 1000 s: stuck at 900 s
        { phase: "Provisioning", since: now - 60_000 },
        { phase: "Degraded", since: now - 900_000 }, // exactly the threshold: not yet
        { phase: "Ready", since: now - 9_000_000 }, // settled, however long
        { phase: "Failed", since: now - 901_000 },
      ],
      now,
      900_000,
    );
    expect(ages.stuck).toBe(2);
    expect(ages.oldestSeconds).toMatchObject({ Provisioning: 1000, Degraded: 900, Ready: 9000, Failed: 901, Pending: 0 });
  });

  it("exports time in phase, stuck tenants, stream lag, resync age, publish failures and lost leases", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.setPhaseTimes([{ phase: "Provisioning", since: 0 }], 1_200_000, 900_000);
    metrics.setStreamLag(3.5);
    metrics.setResyncAge(42);
    metrics.eventPublishFailed(3);
    metrics.eventPublishFailed(0);
    metrics.leaseLost();
    const m = parseExposition(await metrics.render());
    const oldest = "tenant_operator_tenants_phase_oldest_seconds";
    expect(sample(m, oldest, oldest, { phase: "Provisioning" })).toBe(1200);
    expect(sample(m, oldest, oldest, { phase: "Ready" })).toBe(0);
    expect(sample(m, "tenant_operator_tenants_stuck", "tenant_operator_tenants_stuck")).toBe(1);
    expect(sample(m, "tenant_operator_stream_lag_seconds", "tenant_operator_stream_lag_seconds")).toBe(3.5);
    expect(sample(m, "tenant_operator_resync_age_seconds", "tenant_operator_resync_age_seconds")).toBe(42);
    expect(sample(m, "tenant_operator_event_publish_failures_total", "tenant_operator_event_publish_failures_total")).toBe(3);
    expect(sample(m, "tenant_operator_lease_lost_total", "tenant_operator_lease_lost_total")).toBe(1);
  });

  it("gives the EMF line the counts of its interval (reset after) and, while leader only, the gauges", () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.observeReconcile(done(), 1);
    metrics.observeReconcile(failed(new Error("throttled")), 1);
    metrics.observeReconcile(failed(new Error("bad"), true, 60_000), 1);
    metrics.observeReconcile(requeueAfter(1000, "waiting"), 1);
    metrics.eventPublishFailed(2);
    metrics.leaseLost();
    metrics.setPhaseTimes([{ phase: "Degraded", since: 0 }], 2_000_000, 900_000);
    metrics.setStreamLag(1.5);
    metrics.setResyncAge(30);
    // A standby: counts only; its gauges would dilute the leader's.
    expect(metrics.takeEmfValues()).toEqual({ Reconciles: 4, ReconcileErrors: 2, LeaseLost: 1, EventPublishFailures: 2 });
    metrics.setLeader(true);
    metrics.observeReconcile(done(), 1);
    expect(metrics.takeEmfValues()).toEqual({
      Reconciles: 1,
      ReconcileErrors: 0,
      LeaseLost: 0,
      EventPublishFailures: 0,
      TenantsStuck: 1,
      StreamLagSeconds: 1.5,
      ResyncAgeSeconds: 30,
    });
    // A gauge whose source knows nothing (the stream not being read) is left out, not sent as 0.
    metrics.setStreamLag(undefined);
    expect(metrics.takeEmfValues()).not.toHaveProperty("StreamLagSeconds");
  });
});
