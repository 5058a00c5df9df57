import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Logger } from "../log.js";
import type { TenantHintSource } from "../ports.js";
import { hintOfMessage, type HintNames } from "../tiers/ecs-event-hint.js";
import { errorName, sleep } from "./aws-errors.js";

/** What happened to the ECS events received, for the metrics. */
export interface HintCounts {
  /** Messages received from the queue. */
  received(n: number): void;
  /** Events that named a managed key (handed to the manager). */
  enqueued(n: number): void;
  /** Well-formed events about nothing managed here. */
  ignored(n: number): void;
  /** Bodies that were no ECS event; deleted, never retried. */
  malformed(n: number): void;
  /** Events whose key the manager declined (not its shard), returned to the queue for another controller. */
  declined(n: number): void;
}

export interface EcsEventQueueOptions {
  readonly names: HintNames;
  readonly log?: Pick<Logger, "warn" | "debug">;
  readonly counts?: HintCounts;
  /** Long-poll wait of one ReceiveMessage, 0-20 seconds. @default 20 */
  readonly waitSeconds?: number;
  /** First wait after a failed receive; doubles per consecutive failure, with jitter. @default 1000 */
  readonly backoffInitialMs?: number;
  /** @default 30000 */
  readonly backoffMaxMs?: number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** How long a declined message stays hidden before another consumer may take it. @default 1 */
  readonly declineVisibilitySeconds?: number;
  /** Receives after which a message nobody took is deleted anyway (the resync covers its key). @default 10 */
  readonly maxReceives?: number;
}

type OnHints = (keys: readonly string[]) => readonly string[] | void;

/** SQS's limit per ReceiveMessage and DeleteMessageBatch. */
const BATCH = 10;

/**
 * Reads the queue an EventBridge rule fills with ECS events on the managed
 * clusters (TenantHintSource) and hands the keys they name to the manager.
 *
 * Every message received is deleted once its keys are handed over, whatever
 * it held: an event is worth one look, a malformed body is worth none, and
 * the resync covers anything lost. A delete that fails is only logged; the
 * message comes back after its visibility timeout, a harmless second hint.
 * A failing receive backs off and tries again for as long as it runs.
 *
 * Several controllers sharing the fleet by shards share the queue, and an
 * SQS message reaches one of them: keys the manager declines are not
 * deleted but made visible again after a second, for another controller to
 * receive, until a message has been received `maxReceives` times.
 */
export class EcsEventQueue implements TenantHintSource {
  readonly #sqs: SQSClient;
  readonly #queueUrl: string;
  readonly #o: EcsEventQueueOptions;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(sqs: SQSClient, queueUrl: string, options: EcsEventQueueOptions) {
    this.#sqs = sqs;
    this.#queueUrl = queueUrl;
    this.#o = options;
  }

  /** Starts polling; returns at once (nothing needs to be in place before the resync's scan). */
  start(onHints: OnHints): Promise<void> {
    if (this.#abort !== undefined) throw new Error("ECS event queue already started");
    const abort = new AbortController();
    this.#abort = abort;
    this.#loop = this.#run(onHints, abort.signal);
    return Promise.resolve();
  }

  /** Ends the long poll in flight and waits for the loop to finish. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#abort = undefined;
    this.#loop = undefined;
  }

  async #run(onHints: OnHints, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let messages: Message[];
      try {
        messages = await this.#receive(signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        failures += 1;
        const delay = this.#backoff(failures);
        this.#o.log?.warn({ err: errorName(err), message: (err as Error).message, retryInMs: delay }, "could not receive ECS events");
        await sleep(delay, signal);
        continue;
      }
      if (messages.length === 0) continue;
      let declined: Set<Message>;
      try {
        declined = this.#hand(messages, onHints);
      } catch (err) {
        // Left undeleted, the messages come back after their visibility timeout.
        this.#o.log?.warn({ err: errorName(err), message: (err as Error).message }, "could not hand ECS events over");
        continue;
      }
      await this.#delete(messages.filter((m) => !declined.has(m)));
      await this.#release([...declined]);
    }
  }

  #receive(signal: AbortSignal): Promise<Message[]> {
    const received = this.#sqs
      .send(
        new ReceiveMessageCommand({
          QueueUrl: this.#queueUrl,
          MaxNumberOfMessages: BATCH,
          WaitTimeSeconds: Math.max(0, Math.min(20, this.#o.waitSeconds ?? 20)),
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
        }),
        { abortSignal: signal },
      )
      .then((out) => out.Messages ?? []);
    // stop() must not wait out a 20 s poll, whether or not the HTTP handler honours the signal.
    return new Promise<Message[]>((resolve, reject) => {
      const onAbort = () => reject(new Error("stopped"));
      signal.addEventListener("abort", onAbort, { once: true });
      received.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  /** Maps each message to its key and hands the distinct keys over in one call; returns the messages to give back. */
  #hand(messages: readonly Message[], onHints: OnHints): Set<Message> {
    const byKey = new Map<string, Message[]>();
    let ignored = 0;
    let malformed = 0;
    for (const m of messages) {
      const hint = hintOfMessage(m.Body ?? "", this.#o.names);
      if (hint.kind === "key") {
        byKey.set(hint.key, [...(byKey.get(hint.key) ?? []), m]);
        this.#o.log?.debug({ key: hint.key, detailType: hint.detailType, eventName: hint.eventName }, "ECS event");
      } else if (hint.kind === "ignored") ignored += 1;
      else {
        malformed += 1;
        this.#o.log?.warn({ messageId: m.MessageId, reason: hint.reason }, "dropping a malformed message from the ECS event queue");
      }
    }
    const counts = this.#o.counts;
    counts?.received(messages.length);
    const declinedKeys = byKey.size > 0 ? (onHints([...byKey.keys()]) ?? []) : [];
    const declined = new Set<Message>();
    const maxReceives = this.#o.maxReceives ?? 10;
    for (const key of declinedKeys)
      for (const m of byKey.get(key) ?? []) if (Number(m.Attributes?.ApproximateReceiveCount ?? "1") < maxReceives) declined.add(m);
    const keyed = [...byKey.values()].reduce((n, ms) => n + ms.length, 0);
    counts?.enqueued(keyed - declined.size);
    counts?.declined(declined.size);
    counts?.ignored(ignored);
    counts?.malformed(malformed);
    return declined;
  }

  /** Makes declined messages visible again soon, for the controller whose shard they name. */
  async #release(messages: readonly Message[]): Promise<void> {
    const entries = messages.flatMap((m, i) =>
      m.ReceiptHandle !== undefined
        ? [{ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: this.#o.declineVisibilitySeconds ?? 1 }]
        : [],
    );
    if (entries.length === 0) return;
    try {
      await this.#sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: this.#queueUrl, Entries: entries }));
    } catch (err) {
      // They come back after the queue's visibility timeout instead.
      this.#o.log?.debug({ err: errorName(err) }, "could not hand declined ECS events back early");
    }
  }

  async #delete(messages: readonly Message[]): Promise<void> {
    const entries = messages.flatMap((m, i) => (m.ReceiptHandle !== undefined ? [{ Id: String(i), ReceiptHandle: m.ReceiptHandle }] : []));
    if (entries.length === 0) return;
    try {
      const out = await this.#sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: entries }));
      if ((out.Failed?.length ?? 0) > 0)
        this.#o.log?.warn({ failed: out.Failed?.map((f) => f.Code) }, "some ECS events were not deleted; they will be seen again");
    } catch (err) {
      this.#o.log?.warn({ err: errorName(err), message: (err as Error).message }, "could not delete ECS events; they will be seen again");
    }
  }

  /** Equal jitter, as the work queue's backoff: half fixed, half random. */
  #backoff(failures: number): number {
    const ceiling = Math.min(this.#o.backoffMaxMs ?? 30_000, (this.#o.backoffInitialMs ?? 1000) * 2 ** (failures - 1));
    return Math.round(ceiling / 2 + (this.#o.random ?? Math.random)() * (ceiling / 2));
  }
}
