import type { SchedulerControl } from "./ecs-scheduler.js";
import type { FaultRule } from "./faults.js";
import { asRecord } from "./json.js";
import { jsonAnswer, type HttpAnswer } from "./proxy.js";

/** Requests under this path steer the scheduler instead of reaching AWS. */
export const CONTROL_PREFIX = "/_scheduler/";

/** Settings the control API echoes back after changing them. */
export interface ControlSettings {
  speed(): number;
  throttling(): boolean;
  faults(): readonly FaultRule[];
}

/**
 * The scheduler's control API over HTTP, for tests and tools in another
 * process (see ecs-scheduler.ts for the endpoints). A bad request is a 400
 * naming the field; an unknown endpoint a 404.
 */
export async function controlAnswer(
  control: SchedulerControl,
  settings: ControlSettings,
  method: string,
  url: string,
  body: Buffer,
): Promise<HttpAnswer> {
  const path = url.slice(CONTROL_PREFIX.length).split("?")[0] ?? "";
  try {
    const input: unknown = body.length > 0 ? JSON.parse(body.toString("utf8")) : {};
    const field = (name: string): unknown => asRecord(input)?.[name];
    switch (`${method} ${path}`) {
      case "GET state":
        return jsonAnswer(200, control.snapshot());
      case "POST advance":
        control.advance(requireNumber(field("ms"), "ms"));
        return jsonAnswer(200, { now: control.now() });
      case "POST speed":
        control.setSpeed(requireNumber(field("speed"), "speed"));
        return jsonAnswer(200, { speed: settings.speed() });
      case "POST throttling": {
        const enabled = field("enabled");
        if (typeof enabled !== "boolean") throw new Error("enabled must be true or false");
        control.setThrottling(enabled);
        return jsonAnswer(200, { throttling: settings.throttling() });
      }
      case "POST faults":
        control.setFaults(input as FaultRule[]);
        return jsonAnswer(200, { faults: settings.faults() });
      case "POST reset":
        await control.reset({ moto: field("moto") === true });
        return jsonAnswer(200, { reset: true });
      default:
        return jsonAnswer(404, { error: `no control endpoint ${method} ${CONTROL_PREFIX}${path}` });
    }
  } catch (err) {
    return jsonAnswer(400, { error: err instanceof Error ? err.message : String(err) });
  }
}

function requireNumber(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`${name} must be a number`);
  return value;
}
