import type { AttributeValue } from "@aws-sdk/client-dynamodb";

/**
 * Items stay in DynamoDB's own typed form (AttributeValue) all the way
 * through the mover: unmarshalling to JS values would turn big numbers into
 * floats and sets into arrays, and the contract is that an item moves
 * unchanged. This module converts that form to and from DynamoDB JSON as an
 * export to S3 writes it (binary as base64), and gives the canonical text
 * the digest hashes.
 */

export type Item = Record<string, AttributeValue>;

/** JSON-safe DynamoDB JSON: {"S": "x"}, {"N": "1"}, {"B": "<base64>"}, {"M": {...}}... */
export type JsonAttribute =
  | { S: string }
  | { N: string }
  | { B: string }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: string[] }
  | { M: Record<string, JsonAttribute> }
  | { L: JsonAttribute[] }
  | { NULL: boolean }
  | { BOOL: boolean };

export type JsonItem = Record<string, JsonAttribute>;

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

function toJsonAttribute(v: AttributeValue): JsonAttribute {
  if (v.S !== undefined) return { S: v.S };
  if (v.N !== undefined) return { N: v.N };
  if (v.B !== undefined) return { B: b64(v.B) };
  if (v.SS !== undefined) return { SS: [...v.SS] };
  if (v.NS !== undefined) return { NS: [...v.NS] };
  if (v.BS !== undefined) return { BS: v.BS.map(b64) };
  if (v.M !== undefined) return { M: toJsonItem(v.M) };
  if (v.L !== undefined) return { L: v.L.map(toJsonAttribute) };
  if (v.NULL !== undefined) return { NULL: v.NULL };
  if (v.BOOL !== undefined) return { BOOL: v.BOOL };
  throw new TypeError(`unsupported attribute value type ${Object.keys(v).join(",")}`);
}

function toJsonItem(item: Readonly<Item>): JsonItem {
  const out: JsonItem = {};
  for (const [k, v] of Object.entries(item)) out[k] = toJsonAttribute(v);
  return out;
}

/** Parses one attribute of DynamoDB JSON, checking its shape; `path` names it in the error. */
function fromJsonAttribute(value: unknown, path: string): AttributeValue {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new TypeError(`${path}: not a DynamoDB JSON attribute`);
  const entries = Object.entries(value);
  const [type, inner] = entries[0] ?? [];
  if (entries.length !== 1 || type === undefined) throw new TypeError(`${path}: a DynamoDB JSON attribute has exactly one type key`);
  const strings = (x: unknown): string[] => {
    if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) throw new TypeError(`${path}.${type}: expected a list of strings`);
    return x;
  };
  const string = (x: unknown): string => {
    if (typeof x !== "string") throw new TypeError(`${path}.${type}: expected a string`);
    return x;
  };
  const bool = (x: unknown): boolean => {
    if (typeof x !== "boolean") throw new TypeError(`${path}.${type}: expected true or false`);
    return x;
  };
  switch (type) {
    case "S":
      return { S: string(inner) };
    case "N":
      return { N: string(inner) };
    case "B":
      return { B: Buffer.from(string(inner), "base64") };
    case "SS":
      return { SS: strings(inner) };
    case "NS":
      return { NS: strings(inner) };
    case "BS":
      return { BS: strings(inner).map((s) => Buffer.from(s, "base64")) };
    case "M":
      return { M: fromJsonItem(inner, path) };
    case "L":
      if (!Array.isArray(inner)) throw new TypeError(`${path}.L: expected a list`);
      return { L: inner.map((x, i) => fromJsonAttribute(x, `${path}[${i}]`)) };
    case "NULL":
      return { NULL: bool(inner) };
    case "BOOL":
      return { BOOL: bool(inner) };
    default:
      throw new TypeError(`${path}: unknown DynamoDB JSON type ${type}`);
  }
}

function fromJsonItem(value: unknown, path = "Item"): Item {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new TypeError(`${path}: not a map of attributes`);
  const out: Item = {};
  for (const [k, v] of Object.entries(value)) out[k] = fromJsonAttribute(v, `${path}.${k}`);
  return out;
}

/**
 * One line of a DynamoDB export to S3 (DYNAMODB_JSON format):
 * {"Item":{"tenantId":{"S":"a"},...}}.
 */
export function exportLine(item: Readonly<Item>): string {
  return JSON.stringify({ Item: toJsonItem(item) });
}

/** Inverse of exportLine; throws a TypeError naming what is wrong. */
export function parseExportLine(line: string): Item {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new TypeError(`not JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== "object" || !("Item" in parsed)) throw new TypeError(`expected {"Item": {...}}`);
  return fromJsonItem(parsed.Item);
}

/**
 * Text that two equal items share whatever order their attributes, map keys
 * or set members came back in (sets are unordered in DynamoDB): map keys and
 * set members sorted, lists kept in order, every value tagged with its type
 * so the number 1 and the string "1" differ.
 */
export function canonicalItem(item: Readonly<Item>): string {
  return canonical(toJsonItem(item));
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries
      .map(([k, v]) => {
        const inner = (k === "SS" || k === "NS" || k === "BS") && Array.isArray(v) ? [...(v as string[])].sort() : v;
        return `${JSON.stringify(k)}:${canonical(inner)}`;
      })
      .join(",")}}`;
  }
  return JSON.stringify(value);
}
