import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { EMF_METRICS, EmfEmitter, emfLine } from "../../src/observability/emf.js";

const REQUIRED = {
  SUBNETS: "subnet-1",
  SECURITY_GROUPS: "sg-1",
  LISTENER_ARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb/1/2",
  VPC_ID: "vpc-1",
};

interface EmfDoc {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[];
  };
  [member: string]: unknown;
}

/** Checks a document against the EMF specification's rules, returning it typed. */
function parseEmf(line: string): EmfDoc {
  expect(line).not.toContain("\n");
  const doc = JSON.parse(line) as EmfDoc;
  expect(Number.isInteger(doc._aws.Timestamp)).toBe(true);
  expect(doc._aws.CloudWatchMetrics).toHaveLength(1);
  for (const directive of doc._aws.CloudWatchMetrics) {
    expect(directive.Metrics.length).toBeLessThanOrEqual(100);
    // Every dimension named is a top-level string member; every metric declared is a top-level number.
    for (const set of directive.Dimensions) {
      expect(set.length).toBeLessThanOrEqual(30);
      for (const d of set) expect(typeof doc[d]).toBe("string");
    }
    for (const m of directive.Metrics) expect(typeof doc[m.Name]).toBe("number");
  }
  return doc;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("emfLine", () => {
  it("declares the namespace, the Operator dimension and each metric with its unit, values at the top level", () => {
    const doc = parseEmf(
      emfLine(
        {
          TenantsStuck: 2,
          ReconcileErrors: 5,
          LeaseLost: 0,
          StreamLagSeconds: 1.25,
          EventPublishFailures: 1,
          Reconciles: 40,
          ResyncAgeSeconds: 61,
        },
        "saas",
        1_764_000_000_123.4,
      ),
    );
    expect(doc).toEqual({
      _aws: {
        Timestamp: 1_764_000_000_123,
        CloudWatchMetrics: [
          {
            Namespace: "ECSTenantOperator",
            Dimensions: [["Operator"]],
            Metrics: [
              { Name: "TenantsStuck", Unit: "Count" },
              { Name: "ReconcileErrors", Unit: "Count" },
              { Name: "LeaseLost", Unit: "Count" },
              { Name: "StreamLagSeconds", Unit: "Seconds" },
              { Name: "EventPublishFailures", Unit: "Count" },
              { Name: "Reconciles", Unit: "Count" },
              { Name: "ResyncAgeSeconds", Unit: "Seconds" },
            ],
          },
        ],
      },
      Operator: "saas",
      TenantsStuck: 2,
      ReconcileErrors: 5,
      LeaseLost: 0,
      StreamLagSeconds: 1.25,
      EventPublishFailures: 1,
      Reconciles: 40,
      ResyncAgeSeconds: 61,
    });
  });

  it("leaves a metric without a finite value out of both the declaration and the members", () => {
    const doc = parseEmf(emfLine({ Reconciles: 3, StreamLagSeconds: Number.NaN, ResyncAgeSeconds: Infinity }, "p1", 0));
    expect(doc._aws.CloudWatchMetrics[0]?.Metrics).toEqual([{ Name: "Reconciles", Unit: "Count" }]);
    expect(doc).not.toHaveProperty("StreamLagSeconds");
    expect(doc).not.toHaveProperty("ResyncAgeSeconds");
    expect(doc["Reconciles"]).toBe(3);
  });

  it("names exactly the metrics the deployment template alarms on", () => {
    expect(EMF_METRICS).toEqual({
      TenantsStuck: "Count",
      ReconcileErrors: "Count",
      LeaseLost: "Count",
      StreamLagSeconds: "Seconds",
      EventPublishFailures: "Count",
      Reconciles: "Count",
      ResyncAgeSeconds: "Seconds",
    });
  });
});

describe("EmfEmitter", () => {
  it("writes one whole line per interval and a last one at stop, each with the counts since the previous", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const lines: string[] = [];
    let reconciles = 0;
    const emitter = new EmfEmitter({
      operator: "saas",
      intervalMs: 60_000,
      sample: () => {
        const values = { Reconciles: reconciles };
        reconciles = 0;
        return values;
      },
      write: (l) => lines.push(l),
    });
    emitter.start();
    reconciles = 7;
    vi.advanceTimersByTime(59_999);
    expect(lines).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(lines).toHaveLength(1);
    reconciles = 2;
    vi.advanceTimersByTime(30_000);
    emitter.stop();
    vi.advanceTimersByTime(120_000);
    const docs = lines.map(parseEmf);
    expect(docs.map((d) => d["Reconciles"])).toEqual([7, 2]);
    expect(docs.map((d) => d._aws.Timestamp)).toEqual([1_060_000, 1_090_000]);
  });

  it("survives a failing sample and carries on at the next interval", () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const errors: unknown[] = [];
    let fail = true;
    const emitter = new EmfEmitter({
      operator: "saas",
      intervalMs: 1000,
      sample: () => {
        if (fail) throw new Error("source broke");
        return { Reconciles: 1 };
      },
      write: (l) => lines.push(l),
      onError: (e) => errors.push(e),
    });
    emitter.start();
    vi.advanceTimersByTime(1000);
    fail = false;
    vi.advanceTimersByTime(1000);
    emitter.stop();
    expect(errors).toHaveLength(1);
    expect(lines).toHaveLength(2);
  });

  it("writes to stdout by default, as a bare JSON line", () => {
    const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      new EmfEmitter({ operator: "saas", intervalMs: 1000, sample: () => ({ LeaseLost: 1 }) }).emit();
      expect(write).toHaveBeenCalledTimes(1);
      const text = String(write.mock.calls[0]?.[0]);
      expect(text.endsWith("}\n")).toBe(true);
      expect(parseEmf(text.trimEnd())["LeaseLost"]).toBe(1);
    } finally {
      write.mockRestore();
    }
  });
});

describe("EMF configuration", () => {
  it("is off by default, every 60 s when on, stuck after 900 s", () => {
    const c = loadConfig(REQUIRED);
    expect({ emf: c.emfMetrics, interval: c.emfIntervalSeconds, stuck: c.stuckAfterSeconds }).toEqual({
      emf: false,
      interval: 60,
      stuck: 900,
    });
    const on = loadConfig({ ...REQUIRED, EMF_METRICS: "True", EMF_INTERVAL_SECONDS: "10", STUCK_AFTER_SECONDS: "300" });
    expect({ emf: on.emfMetrics, interval: on.emfIntervalSeconds, stuck: on.stuckAfterSeconds }).toEqual({
      emf: true,
      interval: 10,
      stuck: 300,
    });
    expect(loadConfig({ ...REQUIRED, EMF_METRICS: "false" }).emfMetrics).toBe(false);
  });

  it.each([
    [{ EMF_METRICS: "yes" }, "EMF_METRICS must be true or false"],
    [{ EMF_INTERVAL_SECONDS: "0" }, "EMF_INTERVAL_SECONDS must be at least 1"],
    [{ EMF_INTERVAL_SECONDS: "2.5" }, "EMF_INTERVAL_SECONDS must be a whole number"],
    [{ STUCK_AFTER_SECONDS: "soon" }, "STUCK_AFTER_SECONDS must be a whole number"],
  ])("refuses %o naming the variable", (env, message) => {
    let err: unknown;
    try {
      loadConfig({ ...REQUIRED, ...env });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([message]);
  });
});
