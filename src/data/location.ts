import type { BackupLocation } from "../ports.js";

/**
 * s3://bucket/prefix/ <-> BackupLocation. The prefix always ends with "/"
 * (or is empty: the bucket's root), so `<prefix>manifest.json` is a key
 * inside it and never a sibling that merely shares its first characters.
 */
export function parseS3Location(text: string): BackupLocation {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(text.trim());
  if (match === null) throw new TypeError(`"${text}" is not an S3 location: expected s3://bucket/prefix/`);
  const bucket = match[1] ?? "";
  const raw = match[2] ?? "";
  if (raw.startsWith("/") || raw.includes("//")) throw new TypeError(`"${text}": the prefix has an empty path segment`);
  return { bucket, prefix: raw === "" || raw.endsWith("/") ? raw : `${raw}/` };
}

export function formatS3Location(location: BackupLocation): string {
  return `s3://${location.bucket}/${location.prefix}`;
}

/** The data object keys of an export: `<prefix>data/<app>-<n>.json`, as the contract names them. */
export function dataObjectKey(location: BackupLocation, app: string, n: number): string {
  return `${location.prefix}data/${app}-${n}.json`;
}

export function manifestKey(location: BackupLocation): string {
  return `${location.prefix}manifest.json`;
}
