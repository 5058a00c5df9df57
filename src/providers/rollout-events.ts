import { PutEventsCommand, type EventBridgeClient } from "@aws-sdk/client-eventbridge";
import type { RolloutEventSink } from "../ports.js";
import { versionsOf } from "../rollouts/changes.js";
import type { Rollout } from "../rollouts/model.js";
import { progress, type WaveEvent } from "../rollouts/planner.js";
import { wrapAwsError } from "./aws-errors.js";

/** The detail-type of fleet rollout events (docs/design.md "Contract: status events"); SBT's rules do not match it. */
export const ROLLOUT_WAVE_DETAIL_TYPE = "tenant-operator_rolloutWave";

/** The detail of a rollout wave event, for dashboards. */
export interface RolloutWaveDetail {
  readonly rolloutId: string;
  /** WaveStarted, WaveCompleted (deployed and baked), Halted or Completed. */
  readonly event: WaveEvent["kind"];
  /** 1-based; 0 when the event concerns no wave. */
  readonly wave: number;
  readonly waves: number;
  readonly state: Rollout["state"];
  readonly units: readonly string[];
  readonly reason: string;
  /** Default versions, app by app, before and after. */
  readonly from: Readonly<Record<string, string>>;
  readonly to: Readonly<Record<string, string>>;
  readonly counts: { readonly total: number; readonly done: number; readonly failed: number; readonly pending: number };
  readonly at: string;
}

export function waveDetail(r: Rollout, event: WaveEvent): RolloutWaveDetail {
  const from = r.catalogues[r.from];
  const to = r.catalogues[r.to];
  return {
    rolloutId: r.id,
    event: event.kind,
    wave: event.wave,
    waves: r.waves.length,
    state: r.state,
    units: event.units,
    reason: event.reason,
    from: from === undefined ? {} : versionsOf(from),
    to: to === undefined ? {} : versionsOf(to),
    counts: progress(r),
    at: r.updatedAt,
  };
}

/** Publishes each wave event with one PutEvents on the SBT bus and source; throws if it is refused (the step is retried). */
export class EventBridgeRolloutEvents implements RolloutEventSink {
  readonly #client: EventBridgeClient;
  readonly #bus: string;
  readonly #source: string;

  constructor(client: EventBridgeClient, options: { readonly eventBusName: string; readonly source: string }) {
    this.#client = client;
    this.#bus = options.eventBusName;
    this.#source = options.source;
  }

  async publish(rollout: Rollout, event: WaveEvent): Promise<void> {
    let res;
    try {
      res = await this.#client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.#bus,
              Source: this.#source,
              DetailType: ROLLOUT_WAVE_DETAIL_TYPE,
              Detail: JSON.stringify(waveDetail(rollout, event)),
            },
          ],
        }),
      );
    } catch (err) {
      throw wrapAwsError(err, `publishing ${ROLLOUT_WAVE_DETAIL_TYPE} to bus ${this.#bus}`);
    }
    const refused = res.Entries?.[0]?.ErrorCode;
    if (refused !== undefined && refused !== "")
      throw new Error(`PutEvents refused ${ROLLOUT_WAVE_DETAIL_TYPE} (${refused}: ${res.Entries?.[0]?.ErrorMessage ?? ""})`);
  }
}
