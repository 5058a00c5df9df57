import { PutEventsCommand, type EventBridgeClient, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge";
import { TransientError } from "../errors.js";
import type { EventPublisher, StatusEvent } from "../ports.js";
import { chunks, sleep, wrapAwsError } from "./aws-errors.js";

/** PutEvents accepts at most 10 entries per call. */
const ENTRIES_PER_PUT = 10;

export interface EventBridgePublisherOptions {
  /** EVENT_BUS_NAME. */
  readonly eventBusName: string;
  /** EVENT_SOURCE, "sbt.application.plane" for SBT. */
  readonly source: string;
  /** Further attempts for entries that came back with an ErrorCode. @default 3 */
  readonly retries?: number;
  /** Wait before the first such retry; doubles each time. @default 200 */
  readonly backoffMs?: number;
  /**
   * Told how many events were not delivered, each time some were not: the
   * entries still refused after the retries, or every entry of a PutEvents
   * call that failed outright. For metrics; a throw here is ignored.
   */
  readonly onUndelivered?: (events: number) => void;
}

export interface FailedEvent {
  readonly detailType: string;
  readonly tenantId: string;
  readonly errorCode: string;
  readonly errorMessage: string | undefined;
}

/** Some events were still refused after the retries: transient, as the reconcile that wanted them runs again. */
export class EventPublishError extends TransientError {
  constructor(readonly failed: readonly FailedEvent[]) {
    const list = failed.map(
      (f) => `${f.detailType} for tenant ${f.tenantId} (${f.errorCode}${f.errorMessage ? `: ${f.errorMessage}` : ""})`,
    );
    super(`PutEvents refused ${failed.length} event(s): ${list.join("; ")}`);
  }
}

/**
 * Status events to SBT over EventBridge (docs/design.md "Contract: status events").
 * PutEvents is not all-or-nothing: it answers 200 with per-entry errors, so
 * only the refused entries are sent again, and events that got through are
 * never sent twice by this class.
 */
export class EventBridgePublisher implements EventPublisher {
  readonly #client: EventBridgeClient;
  readonly #bus: string;
  readonly #source: string;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #onUndelivered: ((events: number) => void) | undefined;

  constructor(client: EventBridgeClient, options: EventBridgePublisherOptions) {
    this.#client = client;
    this.#bus = options.eventBusName;
    this.#source = options.source;
    this.#retries = options.retries ?? 3;
    this.#backoffMs = options.backoffMs ?? 200;
    this.#onUndelivered = options.onUndelivered;
  }

  async publish(events: readonly StatusEvent[]): Promise<void> {
    const failed: FailedEvent[] = [];
    for (const batch of chunks(events, ENTRIES_PER_PUT)) failed.push(...(await this.#putBatch(batch)));
    if (failed.length > 0) throw new EventPublishError(failed);
  }

  /** Sends one batch, retrying only refused entries; returns those still refused. */
  async #putBatch(batch: readonly StatusEvent[]): Promise<FailedEvent[]> {
    let pending = batch.map((event) => ({ event, entry: this.#entry(event) }));
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await this.#client.send(new PutEventsCommand({ Entries: pending.map((p) => p.entry) }));
      } catch (err) {
        this.#undelivered(pending.length);
        throw wrapAwsError(err, `publishing ${pending.length} event(s) to bus ${this.#bus}`);
      }
      const results = res.Entries ?? [];
      const refused = pending
        .map((p, i) => ({ ...p, result: results[i] }))
        .filter((p) => p.result?.ErrorCode !== undefined && p.result.ErrorCode !== "");
      if (refused.length === 0) return [];
      if (attempt >= this.#retries) {
        this.#undelivered(refused.length);
        return refused.map((p) => ({
          detailType: p.event.detailType,
          tenantId: p.event.detail.tenantId,
          errorCode: p.result?.ErrorCode ?? "Unknown",
          errorMessage: p.result?.ErrorMessage,
        }));
      }
      pending = refused.map(({ event, entry }) => ({ event, entry }));
      await sleep(this.#backoffMs * 2 ** attempt);
    }
  }

  #undelivered(events: number): void {
    try {
      this.#onUndelivered?.(events);
    } catch {
      // A metrics hook must not turn into a publish failure of its own.
    }
  }

  #entry(event: StatusEvent): PutEventsRequestEntry {
    return { EventBusName: this.#bus, Source: this.#source, DetailType: event.detailType, Detail: JSON.stringify(event.detail) };
  }
}
