import { PutRuleCommand, PutTargetsCommand, type EventBridgeClient } from "@aws-sdk/client-eventbridge";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  DeleteMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";

export interface ReceivedEvent {
  readonly detailType: string;
  readonly source: string;
  readonly detail: Record<string, unknown> & { tenantId: string };
}

/** An SQS queue subscribed to the bus, collecting every event the controller sends. */
export class EventSink {
  readonly received: ReceivedEvent[] = [];
  readonly #seen = new Set<string>();
  private constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  static async create(
    eventbridge: EventBridgeClient,
    sqs: SQSClient,
    bus: string,
    source: string,
    name = `sink-${Math.random().toString(36).slice(2, 8)}`,
  ): Promise<EventSink> {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
    await eventbridge.send(new PutRuleCommand({ Name: name, EventBusName: bus, EventPattern: JSON.stringify({ source: [source] }) }));
    await eventbridge.send(
      new PutTargetsCommand({ Rule: name, EventBusName: bus, Targets: [{ Id: "sink", Arn: attrs.Attributes?.["QueueArn"] }] }),
    );
    return new EventSink(sqs, QueueUrl ?? "");
  }

  async drain(): Promise<ReceivedEvent[]> {
    for (;;) {
      const res = await this.sqs.send(new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      const messages = res.Messages ?? [];
      if (messages.length === 0) return this.received;
      for (const m of messages) {
        const body = JSON.parse(m.Body ?? "{}") as { id?: string; "detail-type": string; source: string; detail: ReceivedEvent["detail"] };
        // SQS delivers at least once (a message whose delete came late is received again):
        // one EventBridge event, by its id, counts once. Two PutEvents are two ids.
        if (body.id !== undefined) {
          if (this.#seen.has(body.id)) continue;
          this.#seen.add(body.id);
        }
        this.received.push({ detailType: body["detail-type"], source: body.source, detail: body.detail });
      }
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" })),
        }),
      );
    }
  }

  async of(tenantId: string, detailType?: string): Promise<ReceivedEvent[]> {
    await this.drain();
    return this.received.filter((e) => e.detail.tenantId === tenantId && (detailType === undefined || e.detailType === detailType));
  }
}

/** Polls until the check returns a value other than undefined, or fails after the timeout. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${last !== undefined ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
