import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from "@aws-sdk/client-sqs";
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
}

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
  start(onHints: (keys: readonly string[]) => void): Promise<void> {
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

  async #run(onHints: (keys: readonly string[]) => void, signal: AbortSignal): Promise<void> {
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
      this.#hand(messages, onHints);
      await this.#delete(messages);
    }
  }

  #receive(signal: AbortSignal): Promise<Message[]> {
    const received = this.#sqs
      .send(
        new ReceiveMessageCommand({
          QueueUrl: this.#queueUrl,
          MaxNumberOfMessages: BATCH,
          WaitTimeSeconds: Math.max(0, Math.min(20, this.#o.waitSeconds ?? 20)),
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

  /** Maps each message to its key and hands the distinct keys over in one call. */
  #hand(messages: readonly Message[], onHints: (keys: readonly string[]) => void): void {
    const keys = new Set<string>();
    let enqueued = 0;
    let ignored = 0;
    let malformed = 0;
    for (const m of messages) {
      const hint = hintOfMessage(m.Body ?? "", this.#o.names);
      if (hint.kind === "key") {
        keys.add(hint.key);
        enqueued += 1;
        this.#o.log?.debug({ key: hint.key, detailType: hint.detailType, eventName: hint.eventName }, "ECS event");
      } else if (hint.kind === "ignored") ignored += 1;
      else {
        malformed += 1;
        this.#o.log?.warn({ messageId: m.MessageId, reason: hint.reason }, "dropping a malformed message from the ECS event queue");
      }
    }
    const counts = this.#o.counts;
    counts?.received(messages.length);
    if (keys.size > 0) onHints([...keys]);
    counts?.enqueued(enqueued);
    counts?.ignored(ignored);
    counts?.malformed(malformed);
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
