import type { HttpAnswer } from "./proxy.js";

/**
 * Small readers for the JSON the local cloud passes between clients and
 * moto: bodies arrive untyped, and a malformed one must fall through to moto
 * (which rejects it with the service's own error) rather than throw here.
 */

export type Json = Record<string, unknown>;

/** A JSON request body as an object; undefined when it is not one. An empty body is {}. */
export function parseJson(body: Buffer): Json | undefined {
  try {
    return asRecord(JSON.parse(body.toString("utf8") || "{}"));
  } catch {
    return undefined;
  }
}

/** moto's answer as an object, only when it succeeded (HTTP 200) and is one. */
export function okJson(answer: HttpAnswer): Json | undefined {
  if (answer.status !== 200) return undefined;
  try {
    return asRecord(JSON.parse(answer.body.toString("utf8")));
  } catch {
    return undefined;
  }
}

export function asRecord(value: unknown): Json | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

export function asRecords(value: unknown): Json[] {
  return Array.isArray(value) ? value.flatMap((v) => (asRecord(v) === undefined ? [] : [v as Json])) : [];
}

/** A non-empty string, else undefined. */
export function str(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** A finite number, else undefined. */
export function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** ECS accepts a name or an ARN (…:cluster/name, …:service/cluster/name); the model keys by name. */
export function lastSegment(nameOrArn: string): string {
  return nameOrArn.split("/").pop() ?? nameOrArn;
}

export function clusterName(value: unknown): string {
  return lastSegment(str(value) ?? "default");
}
