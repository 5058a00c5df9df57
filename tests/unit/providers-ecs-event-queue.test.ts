import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EcsEventQueue, type HintCounts } from "../../src/providers/ecs-event-queue.js";
import { POOL_KEY } from "../../src/tiers/desired.js";

const sqsMock = mockClient(SQSClient);
const QUEUE = "http://127.0.0.1:4566/000000000000/saas-ecs-events";
const names = { namePrefix: "saas", poolCluster: "saas-pool", advancedCluster: "saas-advanced" };
const head = "arn:aws:ecs:us-east-1:123456789012:";

function deploymentEvent(cluster: string, service: string): string {
  return JSON.stringify({
    version: "0",
    id: "x",
    "detail-type": "ECS Deployment State Change",
    source: "aws.ecs",
    account: "123456789012",
    time: "2026-11-30T12:31:14Z",
    region: "us-east-1",
    resources: [`${head}service/${cluster}/${service}`],
    detail: { eventType: "INFO", eventName: "SERVICE_DEPLOYMENT_COMPLETED", deploymentId: "ecs-svc/1" },
  });
}

const message = (id: string, body: string): Message => ({ MessageId: id, ReceiptHandle: `rh-${id}`, Body: body });

class Counts implements HintCounts {
  readonly seen = { received: 0, enqueued: 0, ignored: 0, malformed: 0, declined: 0 };
  received(n: number) {
    this.seen.received += n;
  }
  enqueued(n: number) {
    this.seen.enqueued += n;
  }
  ignored(n: number) {
    this.seen.ignored += n;
  }
  malformed(n: number) {
    this.seen.malformed += n;
  }
  declined(n: number) {
    this.seen.declined += n;
  }
}

/** Resolves once `predicate` holds, polling the event loop. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let source: EcsEventQueue | undefined;

beforeEach(() => {
  sqsMock.reset();
});

afterEach(async () => {
  await source?.stop();
  source = undefined;
});

/** A receive that answers `batches` in turn, then waits (as a long poll does) until aborted. */
function receiveAnswers(batches: Message[][]): void {
  let call = 0;
  sqsMock.on(ReceiveMessageCommand).callsFake(() => {
    const batch = batches[call++];
    if (batch !== undefined) return Promise.resolve({ Messages: batch });
    return new Promise(() => {});
  });
}

describe("EcsEventQueue", () => {
  it("long-polls 10 at a time, hands the distinct keys over, then deletes every message received, malformed ones included", async () => {
    receiveAnswers([
      [
        message("1", deploymentEvent("saas-t-acme", "saas-t-acme-orders")),
        message("2", deploymentEvent("saas-t-acme", "saas-t-acme-users")),
        message("3", deploymentEvent("saas-pool", "saas-pool-orders")),
        message("4", deploymentEvent("payments", "api")),
        message("5", "{not json"),
      ],
    ]);
    sqsMock.on(DeleteMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const counts = new Counts();
    const handed: string[][] = [];
    source = new EcsEventQueue(new SQSClient({ region: "us-east-1" }), QUEUE, { names, counts });
    await source.start((keys) => {
      handed.push([...keys]);
    });
    await until(() => sqsMock.commandCalls(DeleteMessageBatchCommand).length === 1, "the delete");

    const receive = sqsMock.commandCalls(ReceiveMessageCommand)[0]?.args[0].input;
    expect(receive).toMatchObject({ QueueUrl: QUEUE, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 });
    expect(handed).toEqual([["acme", POOL_KEY]]);
    const deleted = sqsMock.commandCalls(DeleteMessageBatchCommand)[0]?.args[0].input;
    expect(deleted?.QueueUrl).toBe(QUEUE);
    expect(deleted?.Entries?.map((e) => e.ReceiptHandle)).toEqual(["rh-1", "rh-2", "rh-3", "rh-4", "rh-5"]);
    expect(counts.seen).toEqual({ received: 5, enqueued: 3, ignored: 1, malformed: 1, declined: 0 });
    expect(receive?.MessageSystemAttributeNames).toEqual(["ApproximateReceiveCount"]);
  });

  it("hands keys over before deleting: a crash between the two repeats a hint, never loses one", async () => {
    receiveAnswers([[message("1", deploymentEvent("saas-advanced", "saas-t-b-users"))]]);
    const order: string[] = [];
    sqsMock.on(DeleteMessageBatchCommand).callsFake(() => {
      order.push("delete");
      return { Successful: [{ Id: "0" }] };
    });
    source = new EcsEventQueue(new SQSClient({ region: "us-east-1" }), QUEUE, { names });
    await source.start((keys) => {
      order.push(`hint:${keys.join(",")}`);
    });
    await until(() => order.length === 2, "hint and delete");
    expect(order).toEqual(["hint:b", "delete"]);
  });

  it("keeps polling after a failed receive and a failed delete, backing off between receives", async () => {
    let call = 0;
    sqsMock.on(ReceiveMessageCommand).callsFake(() => {
      call += 1;
      if (call === 1) return Promise.reject(Object.assign(new Error("slow down"), { name: "ThrottlingException" }));
      if (call === 2) return Promise.resolve({ Messages: [message("1", deploymentEvent("saas-t-acme", "saas-t-acme-orders"))] });
      if (call === 3) return Promise.resolve({ Messages: [message("2", deploymentEvent("saas-t-zed", "saas-t-zed-orders"))] });
      return new Promise(() => {});
    });
    sqsMock.on(DeleteMessageBatchCommand).rejects(Object.assign(new Error("boom"), { name: "InternalError" }));
    const handed: string[] = [];
    const warnings: string[] = [];
    source = new EcsEventQueue(new SQSClient({ region: "us-east-1" }), QUEUE, {
      names,
      backoffInitialMs: 5,
      log: { warn: (_o: unknown, msg?: string) => warnings.push(msg ?? ""), debug: () => {} } as never,
    });
    await source.start((keys) => {
      handed.push(...keys);
    });
    await until(() => handed.length === 2, "both hints");
    expect(handed).toEqual(["acme", "zed"]);
    expect(warnings).toContain("could not receive ECS events");
    expect(warnings).toContain("could not delete ECS events; they will be seen again");
  });

  it("gives back, rather than deletes, the messages of keys the manager declines (another shard's), until they were received too often", async () => {
    const seen = (id: string, body: string, receives: number): Message => ({
      ...message(id, body),
      Attributes: { ApproximateReceiveCount: String(receives) },
    });
    receiveAnswers([
      [
        seen("1", deploymentEvent("saas-t-mine", "saas-t-mine-orders"), 1),
        seen("2", deploymentEvent("saas-t-theirs", "saas-t-theirs-orders"), 1),
        seen("3", deploymentEvent("saas-t-theirs", "saas-t-theirs-users"), 2),
        seen("4", deploymentEvent("saas-t-stale", "saas-t-stale-users"), 10),
      ],
    ]);
    sqsMock.on(DeleteMessageBatchCommand).resolves({ Successful: [] });
    sqsMock.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [] });
    const counts = new Counts();
    source = new EcsEventQueue(new SQSClient({ region: "us-east-1" }), QUEUE, { names, counts, maxReceives: 10 });
    await source.start((keys) => keys.filter((k) => k !== "mine"));
    await until(() => sqsMock.commandCalls(ChangeMessageVisibilityBatchCommand).length === 1, "the release");
    expect(sqsMock.commandCalls(DeleteMessageBatchCommand)[0]?.args[0].input.Entries?.map((e) => e.ReceiptHandle)).toEqual([
      "rh-1",
      "rh-4",
    ]);
    expect(sqsMock.commandCalls(ChangeMessageVisibilityBatchCommand)[0]?.args[0].input.Entries).toEqual([
      { Id: "0", ReceiptHandle: "rh-2", VisibilityTimeout: 1 },
      { Id: "1", ReceiptHandle: "rh-3", VisibilityTimeout: 1 },
    ]);
    expect(counts.seen).toMatchObject({ received: 4, enqueued: 2, declined: 2 });
  });

  it("stop() ends the long poll in flight", async () => {
    receiveAnswers([]);
    let aborted = false;
    source = new EcsEventQueue(new SQSClient({ region: "us-east-1" }), QUEUE, { names });
    await source.start(() => {});
    await until(() => sqsMock.commandCalls(ReceiveMessageCommand).length === 1, "the receive");
    await source.stop().then(() => (aborted = true));
    expect(aborted).toBe(true);
    source = undefined;
  });
});
