import { stringify as toYaml } from "yaml";
import type { Io } from "./command.js";
import type { OutputFormat } from "./client-config.js";

/**
 * Text for people: aligned tables, ages like kubectl's ("45s", "3m", "2h",
 * "5d"), one-line truncated messages. Kept apart from the commands so their
 * output can be tested without AWS.
 */

/** kubectl-style age of `since` at `now`; "-" when unknown or unparsable. */
export function formatAge(since: string | undefined, now: Date = new Date()): string {
  if (since === undefined) return "-";
  const at = Date.parse(since);
  if (Number.isNaN(at)) return "-";
  const s = Math.max(0, Math.floor((now.getTime() - at) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** One line: newlines and runs of spaces collapse, so a table row stays one row. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** Cuts `text` to `width` characters, ending with "…" when cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (text.length <= width) return text;
  return width === 1 ? "…" : `${text.slice(0, width - 1)}…`;
}

export interface TableOptions {
  /** Total width to fit; the LAST column is truncated to it. Undefined: no limit. */
  readonly width?: number | undefined;
}

/**
 * Columns separated by three spaces, as kubectl prints them. Only the last
 * column (a free-text message) gives way to the width; the others are short
 * identifiers a person needs whole.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], options: TableOptions = {}): string {
  const gap = "   ";
  const cells = [headers, ...rows].map((r) => headers.map((_, i) => oneLine(r[i] ?? "")));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  const lines = cells.map((row) => {
    const head = row.slice(0, -1).map((c, i) => c.padEnd(widths[i] ?? 0));
    const prefix = head.length > 0 ? head.join(gap) + gap : "";
    const last = row[row.length - 1] ?? "";
    const room = options.width === undefined ? last.length : Math.max(options.width - prefix.length, 0);
    return (prefix + truncate(last, room)).trimEnd();
  });
  return lines.join("\n");
}

/** Columns of the terminal stdout is, else $COLUMNS, else undefined (a pipe gets whole lines). */
export function terminalWidth(io: Io): number | undefined {
  const columns = (io.stdout as { columns?: unknown }).columns;
  if (typeof columns === "number" && columns > 0) return columns;
  const fromEnv = Number(io.env["COLUMNS"]);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : undefined;
}

export function isTerminal(io: Io): boolean {
  return (io.stdout as { isTTY?: unknown }).isTTY === true;
}

/** Data as JSON (pretty) or YAML, for `-o json|yaml`. */
export function renderData(value: unknown, format: Exclude<OutputFormat, "text">): string {
  return format === "json" ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value);
}

/** Prints `tenantctl <command>: message` on stderr and gives the exit code for a failure that is not a usage error. */
export function fail(io: Io, command: string, message: string, code = 1): number {
  io.stderr.write(`tenantctl ${command}: ${message}\n`);
  return code;
}

/** A record's value as text: scalars as they are, anything else as JSON (never "[object Object]"). */
export function display(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === undefined) return "undefined";
  return JSON.stringify(value);
}

/** An SDK or other error's message, without the "Error:" noise. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.name && err.name !== "Error" ? `${err.name}: ${err.message}` : err.message;
}
