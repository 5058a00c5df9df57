import { createHash } from "node:crypto";
import { PutRuleCommand, PutTargetsCommand, type EventBridgeClient } from "@aws-sdk/client-eventbridge";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { display } from "./format.js";

/**
 * Tailing the status events the controller publishes on EventBridge. A bus
 * cannot be read directly, so `tenantctl events` routes the bus into an SQS
 * queue of its own through a rule, both named from the bus so every run (and
 * every operator) finds the same ones: setup is idempotent, and events sent
 * while nobody was tailing wait in the queue for the next run.
 */

export interface EventTail {
  readonly queueName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly ruleName: string;
  readonly ruleArn: string;
}

const PREFIX = "tenantctl-events-";
/** Rule names allow 64 of [.-_A-Za-z0-9]; queue names 80 of [-_A-Za-z0-9]: the stricter of both. */
const MAX_NAME = 64;
/** Kept a day: long enough to read what happened overnight, short enough not to pile up forever. */
const RETENTION_SECONDS = 86_400;
const TARGET_ID = "tenantctl-events";

/**
 * `tenantctl-events-<bus>`, valid as both a queue and a rule name. A bus name
 * that had to be changed (an ARN, a partner bus with "/" and ".") or shortened
 * gets a hash of the original, so two buses never share a queue.
 */
export function tailName(busName: string): string {
  const cleaned = busName.replace(/[^A-Za-z0-9_-]/g, "-");
  const plain = PREFIX + cleaned;
  if (cleaned === busName && plain.length <= MAX_NAME) return plain;
  const hash = createHash("sha256").update(busName).digest("hex").slice(0, 8);
  return `${PREFIX}${cleaned.slice(0, MAX_NAME - PREFIX.length - hash.length - 1)}-${hash}`;
}

/** Creates (or finds) the queue, the rule matching `source` on the bus, the queue policy and the target. */
export async function ensureEventTail(
  clients: { readonly sqs: SQSClient; readonly eventbridge: EventBridgeClient },
  busName: string,
  source: string,
): Promise<EventTail> {
  const name = tailName(busName);
  const queueUrl = await step("creating queue", () => ensureQueue(clients.sqs, name));
  const attributes = await step("reading queue", () =>
    clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] })),
  );
  const queueArn = attributes.Attributes?.["QueueArn"];
  if (queueArn === undefined) throw new Error(`queue ${name} has no QueueArn`);
  const rule = await step(`creating rule on bus ${busName}`, () =>
    clients.eventbridge.send(
      new PutRuleCommand({
        Name: name,
        EventBusName: busName,
        EventPattern: JSON.stringify({ source: [source] }),
        State: "ENABLED",
        Description: "tenantctl events: copies the tenant operator's status events to an SQS queue to tail",
      }),
    ),
  );
  const ruleArn = rule.RuleArn;
  if (ruleArn === undefined) throw new Error(`PutRule ${name} returned no RuleArn`);
  // EventBridge may deliver only what the queue's policy lets this rule send.
  const policy = {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "tenantctl-events",
        Effect: "Allow",
        Principal: { Service: "events.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: queueArn,
        Condition: { ArnEquals: { "aws:SourceArn": ruleArn } },
      },
    ],
  };
  await step("setting queue policy", () =>
    clients.sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: queueUrl,
        Attributes: { Policy: JSON.stringify(policy), MessageRetentionPeriod: String(RETENTION_SECONDS) },
      }),
    ),
  );
  const targets = await step("adding rule target", () =>
    clients.eventbridge.send(new PutTargetsCommand({ Rule: name, EventBusName: busName, Targets: [{ Id: TARGET_ID, Arn: queueArn }] })),
  );
  if ((targets.FailedEntryCount ?? 0) > 0) {
    throw new Error(
      `adding rule target: ${targets.FailedEntries?.map((e) => `${e.ErrorCode ?? ""} ${e.ErrorMessage ?? ""}`).join("; ") ?? "failed"}`,
    );
  }
  return { queueName: name, queueUrl, queueArn, ruleName: name, ruleArn };
}

/** GetQueueUrl first: CreateQueue on an existing queue fails when its attributes differ from the ones given. */
async function ensureQueue(sqs: SQSClient, name: string): Promise<string> {
  try {
    const found = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (found.QueueUrl !== undefined) return found.QueueUrl;
  } catch (err) {
    if (!(err instanceof Error && /QueueDoesNotExist|NonExistentQueue/.test(err.name))) throw err;
  }
  const created = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  if (created.QueueUrl === undefined) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  return created.QueueUrl;
}

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const inner = err instanceof Error ? err : new Error(String(err));
    const wrapped = new Error(`${what}: ${inner.name !== "Error" ? `${inner.name}: ` : ""}${inner.message}`, { cause: inner });
    wrapped.name = inner.name;
    throw wrapped;
  }
}

/** An event as EventBridge delivers it to an SQS target (the message body). */
export interface TailedEvent {
  readonly id?: string;
  readonly time?: string;
  readonly source?: string;
  readonly "detail-type"?: string;
  readonly detail?: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

export interface Received {
  /** The parsed event, or undefined when the body was not an EventBridge event (it is still shown, raw). */
  readonly event: TailedEvent | undefined;
  readonly body: string;
  readonly receiptHandle: string | undefined;
}

/** Up to 10 messages, long-polling `waitSeconds`; an abort ends the poll early with an AbortError. */
export async function receiveEvents(sqs: SQSClient, queueUrl: string, waitSeconds: number, signal?: AbortSignal): Promise<Received[]> {
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: Math.max(0, Math.min(20, Math.floor(waitSeconds))),
      VisibilityTimeout: 30,
    }),
    signal !== undefined ? { abortSignal: signal } : {},
  );
  const received = (out.Messages ?? []).map((m) => ({
    event: parseEvent(m.Body ?? ""),
    body: m.Body ?? "",
    receiptHandle: m.ReceiptHandle,
  }));
  // One receive may hold several events out of order; show them as they happened.
  return received.sort((a, b) => (a.event?.time ?? "").localeCompare(b.event?.time ?? ""));
}

/** Deletes shown messages so the next run does not show them again. */
export async function acknowledge(sqs: SQSClient, queueUrl: string, received: readonly Received[]): Promise<void> {
  const entries = received.flatMap((r, i) => (r.receiptHandle !== undefined ? [{ Id: String(i), ReceiptHandle: r.receiptHandle }] : []));
  if (entries.length === 0) return;
  const out = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
  if ((out.Failed?.length ?? 0) > 0) {
    throw new Error(`deleting received messages: ${out.Failed?.map((f) => `${f.Code ?? ""} ${f.Message ?? ""}`).join("; ") ?? ""}`);
  }
}

export function parseEvent(body: string): TailedEvent | undefined {
  try {
    const value: unknown = JSON.parse(body);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    const event = value as TailedEvent;
    return typeof event["detail-type"] === "string" ? event : undefined;
  } catch {
    return undefined;
  }
}

const DETAIL_TYPE_WIDTH = 26; // "sbt_aws_deprovisionFailure"

/** One line a person reads: time, detail-type, tenant, registration status, phase, reason. */
export function formatEventLine(r: Received): string {
  const event = r.event;
  if (event === undefined) return `(not an EventBridge event) ${r.body.replace(/\s+/g, " ")}`;
  const detail = event.detail ?? {};
  const jobOutput = (detail["jobOutput"] ?? {}) as Record<string, unknown>;
  const registration = (jobOutput["tenantRegistrationData"] ?? {}) as Record<string, unknown>;
  const parts = [
    event.time ?? "-",
    (event["detail-type"] ?? "-").padEnd(DETAIL_TYPE_WIDTH),
    `tenant=${display(detail["tenantId"] ?? "-")}`,
  ];
  if (registration["registrationStatus"] !== undefined) parts.push(`registrationStatus=${display(registration["registrationStatus"])}`);
  if (detail["phase"] !== undefined) parts.push(`phase=${display(detail["phase"])}`);
  if (detail["reason"] !== undefined) parts.push(`reason=${JSON.stringify(display(detail["reason"]))}`);
  return parts.join("  ");
}
