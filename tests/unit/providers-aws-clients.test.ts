import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeClustersCommand } from "@aws-sdk/client-ecs";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isRetryable } from "../../src/operator/errors.js";
import { awsClient, awsClientConfig, createAwsClients, credentialsFromEnv, RETRIES } from "../../src/providers/aws-clients.js";
import { CallCounter, diffSnapshots, totalOf, type CallEvent } from "../../src/providers/call-counter.js";

/**
 * A loopback HTTP server answering ECS JSON calls from a script, so the real
 * SDK stack (retry middleware, error parsing, our counting middleware) runs.
 */
let server: Server;
let endpoint: string;
let script: { status: number; body: unknown }[] = [];
let received = 0;

beforeAll(async () => {
  process.env["AWS_ACCESS_KEY_ID"] ??= "test";
  process.env["AWS_SECRET_ACCESS_KEY"] ??= "test";
  server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received++;
      const next = script.shift() ?? { status: 200, body: { clusters: [], failures: [] } };
      const body = next.body as { __type?: string };
      res.writeHead(next.status, {
        "content-type": "application/x-amz-json-1.1",
        ...(body.__type !== undefined ? { "x-amzn-errortype": body.__type } : {}),
      });
      res.end(JSON.stringify(next.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  script = [];
  received = 0;
});

const throttle = { status: 400, body: { __type: "ThrottlingException", message: "Rate exceeded" } };
const ok = { status: 200, body: { clusters: [{ clusterName: "c", status: "ACTIVE" }], failures: [] } };

describe("createAwsClients", () => {
  it("retries a ThrottlingException and counts one call and each attempt with its outcome", async () => {
    const counter = new CallCounter();
    const events: CallEvent[] = [];
    counter.onCall((e) => events.push(e));
    const clients = createAwsClients({ region: "us-east-1", endpoint }, counter, { retryMode: "standard", maxAttempts: 3 });
    script = [throttle, ok];
    const before = counter.snapshot();
    const out = await clients.ecs.send(new DescribeClustersCommand({ clusters: ["c"] }));
    expect(out.clusters?.[0]?.clusterName).toBe("c");
    expect(received).toBe(2);
    const delta = diffSnapshots(before, counter.snapshot());
    expect(delta.calls).toEqual({ "ecs:DescribeClusters:ok": 1 });
    expect(delta.attempts).toEqual({ "ecs:DescribeClusters:throttled": 1, "ecs:DescribeClusters:ok": 1 });
    expect(events.map((e) => `${e.kind}:${e.outcome}`)).toEqual(["attempt:throttled", "attempt:ok", "call:ok"]);
    clients.destroy();
  });

  it("gives up after maxAttempts and surfaces the throttle as a retryable, counted error", async () => {
    const counter = new CallCounter();
    const clients = createAwsClients({ region: "us-east-1", endpoint }, counter, { retryMode: "standard", maxAttempts: 2 });
    script = [throttle, throttle, throttle];
    const err = await clients.ecs.send(new DescribeClustersCommand({ clusters: ["c"] })).catch((e: unknown) => e);
    expect((err as Error).name).toBe("ThrottlingException");
    expect(isRetryable(err)).toBe(true);
    expect(received).toBe(2);
    expect(counter.total({ service: "ecs", outcome: "throttled" })).toBe(1);
    expect(counter.total({ service: "ecs", outcome: "throttled" }, "attempt")).toBe(2);
    clients.destroy();
  });

  it("counts HTTP 429 as throttled and other errors as error", async () => {
    const counter = new CallCounter();
    const clients = createAwsClients({ region: "us-east-1", endpoint }, counter, { retryMode: "standard", maxAttempts: 1 });
    script = [
      { status: 429, body: { __type: "SomethingElse", message: "slow down" } },
      { status: 400, body: { __type: "InvalidParameterException", message: "bad" } },
    ];
    await clients.ecs.send(new DescribeClustersCommand({ clusters: ["c"] })).catch(() => undefined);
    await clients.ecs.send(new DescribeClustersCommand({ clusters: ["c"] })).catch(() => undefined);
    const snap = counter.snapshot();
    expect(snap.calls).toEqual({ "ecs:DescribeClusters:throttled": 1, "ecs:DescribeClusters:error": 1 });
    expect(totalOf(snap, { operation: "DescribeClusters" })).toBe(2);
    clients.destroy();
  });

  it("builds every client with the region and the configured endpoint", async () => {
    const clients = createAwsClients({ region: "eu-west-1", endpoint });
    for (const name of ["ecs", "dynamodb", "streams", "eventbridge", "cloudformation", "sqs", "ec2", "elbv2"] as const) {
      const client = clients[name];
      expect(await client.config.region(), name).toBe("eu-west-1");
      const ep = await client.config.endpoint?.();
      expect(ep?.hostname, name).toBe("127.0.0.1");
    }
    clients.destroy();
  });
});

describe("awsClientConfig", () => {
  const creds = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
  it.each([
    {
      reason: "AWS itself: region and the controller's retries only, credentials left to the SDK's chain",
      target: { region: "eu-west-1" },
      retries: {},
      want: { region: "eu-west-1", retryMode: "adaptive", maxAttempts: 5 },
    },
    {
      reason: "an endpoint override also addresses S3 by path: a local endpoint has no bucket host names",
      target: { region: "us-east-1", endpoint: "http://127.0.0.1:4566", credentials: creds },
      retries: RETRIES.none,
      want: {
        region: "us-east-1",
        retryMode: "standard",
        maxAttempts: 1,
        endpoint: "http://127.0.0.1:4566",
        forcePathStyle: true,
        credentials: creds,
      },
    },
    {
      reason: "a person waits: the SDK's own three standard attempts",
      target: { region: "us-east-1" },
      retries: RETRIES.standard,
      want: { region: "us-east-1", retryMode: "standard", maxAttempts: 3 },
    },
  ])("$reason", ({ target, retries, want }) => {
    expect(awsClientConfig(target, retries)).toEqual(want);
  });

  it("gives a client built by awsClient the target's endpoint, region and credentials", async () => {
    const s3 = awsClient(S3Client, { region: "eu-west-1", endpoint, credentials: creds }, RETRIES.none);
    expect(await s3.config.region()).toBe("eu-west-1");
    expect((await s3.config.endpoint?.())?.hostname).toBe("127.0.0.1");
    expect(s3.config.forcePathStyle).toBe(true);
    expect(await s3.config.maxAttempts()).toBe(1);
    expect((await s3.config.credentials()).accessKeyId).toBe("AKIDEXAMPLE");
    s3.destroy();
  });

  it("takes credentials from an environment only when it carries both keys", () => {
    expect(credentialsFromEnv({ AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b", AWS_SESSION_TOKEN: "t" })).toEqual({
      accessKeyId: "a",
      secretAccessKey: "b",
      sessionToken: "t",
    });
    expect(credentialsFromEnv({ AWS_ACCESS_KEY_ID: "a" })).toBeUndefined();
    expect(credentialsFromEnv({ AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "" })).toBeUndefined();
  });
});

describe("CallCounter", () => {
  it("diffs snapshots and keeps a throwing listener from breaking counting", () => {
    const c = new CallCounter();
    c.onCall(() => {
      throw new Error("broken metrics");
    });
    const seen: string[] = [];
    const off = c.onCall((e) => seen.push(e.operation));
    c.record({ kind: "call", service: "ecs", operation: "DescribeServices", outcome: "ok", durationMs: 1 });
    const a = c.snapshot();
    c.record({ kind: "call", service: "ecs", operation: "DescribeServices", outcome: "ok", durationMs: 1 });
    off();
    c.record({ kind: "call", service: "ecs", operation: "CreateService", outcome: "throttled", durationMs: 1 });
    const d = diffSnapshots(a, c.snapshot());
    expect(d.calls).toEqual({ "ecs:DescribeServices:ok": 1, "ecs:CreateService:throttled": 1 });
    expect(seen).toEqual(["DescribeServices", "DescribeServices"]);
    expect(c.total({ service: "ecs" })).toBe(3);
  });
});
