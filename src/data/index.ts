/** Tenant data on DynamoDB, DynamoDB Streams and S3 (TenantDataPort, docs/design.md "Contract: tenant data"). */
export { DynamoTenantData, type DynamoTenantDataOptions } from "./dynamo-tenant-data.js";
export { BackupError, CaptureLostError, NoStreamError } from "./errors.js";
export { formatS3Location, parseS3Location } from "./location.js";
export { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
