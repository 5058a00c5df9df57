import { describe, expect, it } from "vitest";
import { Metrics, outcomeOf } from "../../src/observability/metrics.js";
import { CallCounter } from "../../src/providers/call-counter.js";
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
});
