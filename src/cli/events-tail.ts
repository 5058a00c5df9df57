import { randomBytes } from "node:crypto";
import {
  DeleteRuleCommand,
  ListRulesCommand,
  ListTagsForResourceCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  TagResourceCommand,
  type EventBridgeClient,
} from "@aws-sdk/client-eventbridge";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  TagQueueCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { MANAGED_BY_KEY, MANAGED_BY_VALUE } from "../tiers/model.js";

/**
 * Tailing the status events the controller publishes on EventBridge. A bus
 * cannot be read directly, so each `tenantctl events --follow` routes the
 * bus into an SQS queue of its own through a rule, both named
 * `<prefix>-events-<random>`: every viewer sees every event, and none takes
 * events from another (docs/adr/0012-event-viewers-own-queues.md).
 *
 * A viewer deletes its rule and queue when it stops. One that dies cannot,
 * so both carry an expiry tag that a live viewer pushes forward; any viewer
 * starting deletes the expired ones it finds, and only those tagged
 * managed-by=ecs-tenant-operator (the ownership contract).
 */

export interface EventViewer {
  readonly queueName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly ruleName: string;
  readonly ruleArn: string;
}

interface Clients {
  readonly sqs: SQSClient;
  readonly eventbridge: EventBridgeClient;
}

/** Tag on a viewer's queue and rule: when they may be deleted by anyone (ISO time). */
export const EXPIRES_TAG = "tenantctl-viewer-expires-at";
/** How long a viewer's queue and rule outlive their last heartbeat. */
export const VIEWER_TTL_MS = 60 * 60_000;
/** How often a live viewer pushes its expiry forward: well inside the TTL, so a slow call or two never lets it lapse. */
export const HEARTBEAT_MS = 10 * 60_000;
/** Events wait this long in a viewer's queue; it reads them within seconds, this covers a suspended laptop. */
const RETENTION_SECONDS = 3600;
const TARGET_ID = "tenantctl-events";

/** What starts the names of every viewer's queue and rule for this operator (NAME_PREFIX). */
export function viewerPrefix(namePrefix: string): string {
  return `${namePrefix}-events-`;
}

/** `<prefix>-events-<16 hex>`: unique per viewer, valid as a queue name (80) and a rule name (64). */
export function viewerName(namePrefix: string, random: string = randomBytes(8).toString("hex")): string {
  return `${viewerPrefix(namePrefix)}${random}`;
}

/** True when tags are a viewer's (ours) and its expiry has passed; a resource without both is never ours to delete. */
export function isExpiredViewer(tags: Readonly<Record<string, string | undefined>>, now: Date): boolean {
  if (tags[MANAGED_BY_KEY] !== MANAGED_BY_VALUE) return false;
  const expires = Date.parse(tags[EXPIRES_TAG] ?? "");
  return !Number.isNaN(expires) && expires < now.getTime();
}

const expiryTags = (now: Date) => ({
  [MANAGED_BY_KEY]: MANAGED_BY_VALUE,
  [EXPIRES_TAG]: new Date(now.getTime() + VIEWER_TTL_MS).toISOString(),
});

/**
 * Creates this viewer's queue, then its rule on the bus matching `source`,
 * the queue policy and the target. The queue comes first so a rule never
 * exists without the queue whose expiry governs it; a failure part way
 * removes what was made.
 */
export async function openViewer(
  clients: Clients,
  options: { readonly namePrefix: string; readonly busName: string; readonly source: string; readonly now?: Date },
): Promise<EventViewer> {
  const name = viewerName(options.namePrefix);
  const tags = expiryTags(options.now ?? new Date());
  const created = await step("creating queue", () =>
    clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { MessageRetentionPeriod: String(RETENTION_SECONDS) }, tags })),
  );
  const queueUrl = created.QueueUrl;
  if (queueUrl === undefined) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  try {
    const attributes = await step("reading queue", () =>
      clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] })),
    );
    const queueArn = attributes.Attributes?.["QueueArn"];
    if (queueArn === undefined) throw new Error(`queue ${name} has no QueueArn`);
    const rule = await step(`creating rule on bus ${options.busName}`, () =>
      clients.eventbridge.send(
        new PutRuleCommand({
          Name: name,
          EventBusName: options.busName,
          EventPattern: JSON.stringify({ source: [options.source] }),
          State: "ENABLED",
          Description: "tenantctl events --follow: copies the tenant operator's status events to this viewer's queue",
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
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
      clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { Policy: JSON.stringify(policy) } })),
    );
    const targets = await step("adding rule target", () =>
      clients.eventbridge.send(
        new PutTargetsCommand({ Rule: name, EventBusName: options.busName, Targets: [{ Id: TARGET_ID, Arn: queueArn }] }),
      ),
    );
    if ((targets.FailedEntryCount ?? 0) > 0) {
      throw new Error(
        `adding rule target: ${targets.FailedEntries?.map((e) => `${e.ErrorCode ?? ""} ${e.ErrorMessage ?? ""}`).join("; ") ?? "failed"}`,
      );
    }
    return { queueName: name, queueUrl, queueArn, ruleName: name, ruleArn };
  } catch (err) {
    await removeViewer(clients, options.busName, name, queueUrl).catch(() => undefined);
    throw err;
  }
}

/** Pushes the viewer's expiry forward (the heartbeat of a live viewer). */
export async function extendViewer(clients: Clients, viewer: EventViewer, now: Date = new Date()): Promise<void> {
  const tags = expiryTags(now);
  await clients.sqs.send(new TagQueueCommand({ QueueUrl: viewer.queueUrl, Tags: tags }));
  await clients.eventbridge.send(
    new TagResourceCommand({ ResourceARN: viewer.ruleArn, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }),
  );
}

/** Deletes the viewer's rule (targets first, as EventBridge requires), then its queue. Gone already is fine. */
export async function closeViewer(clients: Clients, busName: string, viewer: EventViewer): Promise<void> {
  await removeViewer(clients, busName, viewer.ruleName, viewer.queueUrl);
}

async function removeViewer(clients: Clients, busName: string, ruleName: string, queueUrl: string | undefined): Promise<void> {
  await removeRule(clients.eventbridge, busName, ruleName);
  if (queueUrl !== undefined) await ignoreMissing(() => clients.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })));
}

async function removeRule(eventbridge: EventBridgeClient, busName: string, ruleName: string): Promise<void> {
  await ignoreMissing(() => eventbridge.send(new RemoveTargetsCommand({ Rule: ruleName, EventBusName: busName, Ids: [TARGET_ID] })));
  await ignoreMissing(() => eventbridge.send(new DeleteRuleCommand({ Name: ruleName, EventBusName: busName })));
}

const MISSING = new Set(["ResourceNotFoundException", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"]);

async function ignoreMissing(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (err) {
    if (!(err instanceof Error && MISSING.has(err.name))) throw err;
  }
}

/**
 * Deletes the queues and rules of viewers that died (expired, ours), so a
 * killed `tenantctl events --follow` leaves nothing behind for long.
 * Returns the names removed. A viewer is judged by its own tags only, never
 * by whether its partner exists: a queue created a moment ago by a viewer
 * starting now has no rule yet and must be left alone.
 */
export async function sweepExpiredViewers(
  clients: Clients,
  options: { readonly namePrefix: string; readonly busName: string; readonly now?: Date },
): Promise<string[]> {
  const now = options.now ?? new Date();
  const prefix = viewerPrefix(options.namePrefix);
  const removed = new Set<string>();
  let token: string | undefined;
  do {
    const page = await clients.sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 1000, NextToken: token }));
    for (const url of page.QueueUrls ?? []) {
      const name = url.slice(url.lastIndexOf("/") + 1);
      let tags: Record<string, string>;
      try {
        tags = (await clients.sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags ?? {};
      } catch (err) {
        if (err instanceof Error && MISSING.has(err.name)) continue; // another viewer swept it first
        throw err;
      }
      if (!isExpiredViewer(tags, now)) continue;
      await removeViewer(clients, options.busName, name, url);
      removed.add(name);
    }
    token = page.NextToken;
  } while (token !== undefined);
  // A rule whose queue went some other way (deleted by hand): judged by its own expiry tag.
  let next: string | undefined;
  do {
    const page = await clients.eventbridge.send(
      new ListRulesCommand({ NamePrefix: prefix, EventBusName: options.busName, NextToken: next }),
    );
    for (const rule of page.Rules ?? []) {
      if (rule.Name === undefined || rule.Arn === undefined || removed.has(rule.Name)) continue;
      let tags: Record<string, string>;
      try {
        const out = await clients.eventbridge.send(new ListTagsForResourceCommand({ ResourceARN: rule.Arn }));
        tags = Object.fromEntries((out.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
      } catch (err) {
        if (err instanceof Error && MISSING.has(err.name)) continue;
        throw err;
      }
      if (!isExpiredViewer(tags, now)) continue;
      await removeRule(clients.eventbridge, options.busName, rule.Name);
      removed.add(rule.Name);
    }
    next = page.NextToken;
  } while (next !== undefined);
  return [...removed].sort();
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

/** Deletes received messages from the viewer's own queue, so they are not delivered to it again. */
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

/** A detail field as text: scalars as they are, anything else (another sender's event) as JSON. */
const text = (v: unknown): string =>
  typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v) : (JSON.stringify(v) ?? "-");

/** One line a person reads: time, detail-type, tenant, registration status, phase, reason. */
export function formatEventLine(r: Received): string {
  const event = r.event;
  if (event === undefined) return `(not an EventBridge event) ${r.body.replace(/\s+/g, " ")}`;
  const detail = event.detail ?? {};
  const jobOutput = (detail["jobOutput"] ?? {}) as Record<string, unknown>;
  const registration = (jobOutput["tenantRegistrationData"] ?? {}) as Record<string, unknown>;
  const parts = [event.time ?? "-", (event["detail-type"] ?? "-").padEnd(DETAIL_TYPE_WIDTH), `tenant=${text(detail["tenantId"] ?? "-")}`];
  if (registration["registrationStatus"] !== undefined) parts.push(`registrationStatus=${text(registration["registrationStatus"])}`);
  if (detail["phase"] !== undefined) parts.push(`phase=${text(detail["phase"])}`);
  if (detail["reason"] !== undefined) parts.push(`reason=${JSON.stringify(text(detail["reason"]))}`);
  return parts.join("  ");
}
