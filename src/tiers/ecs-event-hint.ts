import { z } from "zod";
import { POOL_KEY } from "./desired.js";
import { isPoolServiceName, premiumClusterName, tenantOfEcsName } from "./naming.js";

/**
 * From an ECS event, as EventBridge delivers it (an SQS message body), to the
 * reconcile key it is about: a tenant id, or POOL_KEY for a pooled service.
 * Pure. An event is only a hint of which key to look at again
 * (docs/adr/0017-ecs-events-as-hints.md): nothing in it but the names is used.
 *
 * The three detail types the rule forwards, as ECS sends them:
 * - "ECS Service Action": resources [serviceArn], detail.clusterArn, detail.eventName;
 * - "ECS Deployment State Change": resources [serviceArn], detail.eventName (no clusterArn);
 * - "ECS Task State Change": resources [taskArn], detail.clusterArn and
 *   detail.group "service:<name>" (a task started by a service).
 * Service ARNs are in the long format, arn:aws:ecs:<region>:<account>:service/<cluster>/<service>,
 * the only one accounts can have since 2021.
 */

export const ECS_EVENT_SOURCE = "aws.ecs";
export const ECS_EVENT_DETAIL_TYPES = ["ECS Service Action", "ECS Deployment State Change", "ECS Task State Change"] as const;
export type EcsEventDetailType = (typeof ECS_EVENT_DETAIL_TYPES)[number];

/** The managed names: what tells one of our clusters and services from any other. */
export interface HintNames {
  readonly namePrefix: string;
  readonly poolCluster: string;
  readonly advancedCluster: string;
}

export type EcsHint =
  | { readonly kind: "key"; readonly key: string; readonly detailType: EcsEventDetailType; readonly eventName: string }
  /** A well-formed event about nothing this controller manages (another cluster, a standalone task, another source). */
  | { readonly kind: "ignored"; readonly reason: string }
  /** Not an ECS event as EventBridge delivers one: not JSON, or a field its detail type always has is missing. */
  | { readonly kind: "malformed"; readonly reason: string };

const envelopeSchema = z.object({
  source: z.string(),
  "detail-type": z.string(),
  resources: z.array(z.string()).optional(),
  detail: z.record(z.string(), z.unknown()),
});

const serviceEventSchema = z.object({
  resources: z.array(z.string()).min(1, "resources must name the service"),
  detail: z.object({ eventName: z.string() }),
});

const taskEventSchema = z.object({
  detail: z.object({ clusterArn: z.string(), lastStatus: z.string(), group: z.string().optional() }),
});

/** The hint in one SQS message body. */
export function hintOfMessage(body: string, names: HintNames): EcsHint {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { kind: "malformed", reason: "the message body is not JSON" };
  }
  return hintOfEvent(parsed, names);
}

/** The hint in one event. */
export function hintOfEvent(event: unknown, names: HintNames): EcsHint {
  const envelope = envelopeSchema.safeParse(event);
  if (!envelope.success) return { kind: "malformed", reason: `not an EventBridge event: ${issues(envelope.error)}` };
  const { source } = envelope.data;
  const detailType = envelope.data["detail-type"];
  if (source !== ECS_EVENT_SOURCE) return { kind: "ignored", reason: `source ${source}` };
  if (!isDetailType(detailType)) return { kind: "ignored", reason: `detail-type ${detailType}` };

  let cluster: string | undefined;
  let service: string | undefined;
  let eventName: string;
  if (detailType === "ECS Task State Change") {
    const task = taskEventSchema.safeParse(event);
    if (!task.success) return { kind: "malformed", reason: `${detailType}: ${issues(task.error)}` };
    const group = task.data.detail.group ?? "";
    // A task of a family run by hand (RunTask) belongs to no service: nothing here drives it.
    if (!group.startsWith("service:")) return { kind: "ignored", reason: `task group ${group || "(none)"}` };
    cluster = arnTail(task.data.detail.clusterArn, "cluster");
    service = group.slice("service:".length);
    eventName = task.data.detail.lastStatus;
  } else {
    const svc = serviceEventSchema.safeParse(event);
    if (!svc.success) return { kind: "malformed", reason: `${detailType}: ${issues(svc.error)}` };
    const path = arnTail(svc.data.resources[0] ?? "", "service")?.split("/");
    if (path?.length !== 2)
      return { kind: "malformed", reason: `${detailType}: resources[0] is not a service ARN (…:service/<cluster>/<service>)` };
    [cluster, service] = path;
    eventName = svc.data.detail.eventName;
  }
  if (cluster === undefined || cluster === "" || service === undefined || service === "")
    return { kind: "malformed", reason: `${detailType}: no cluster or service name` };

  const key = keyOf(cluster, service, names);
  return key === undefined
    ? { kind: "ignored", reason: `service ${cluster}/${service} is not managed here` }
    : { kind: "key", key, detailType, eventName };
}

/**
 * The key of a service in a managed cluster. A premium cluster names its
 * tenant; in the shared advanced cluster the service does; in the pool
 * cluster a pooled service is the pool's.
 */
function keyOf(cluster: string, service: string, names: HintNames): string | undefined {
  const prefix = names.namePrefix;
  if (cluster === names.poolCluster) return isPoolServiceName(prefix, service) ? POOL_KEY : undefined;
  if (cluster === names.advancedCluster) return tenantOfEcsName(prefix, service, "service");
  const tenant = tenantOfEcsName(prefix, cluster, "cluster");
  // Only the tenant's own services live in its cluster.
  return tenant !== undefined && tenantOfEcsName(prefix, service, "service") === tenant && premiumClusterName(prefix, tenant) === cluster
    ? tenant
    : undefined;
}

function isDetailType(s: string): s is EcsEventDetailType {
  return (ECS_EVENT_DETAIL_TYPES as readonly string[]).includes(s);
}

/** What follows "<kind>/" in an ECS ARN, or undefined when it is no such ARN. */
function arnTail(arn: string, kind: "cluster" | "service"): string | undefined {
  const parts = arn.split(":");
  if (parts.length < 6 || parts[0] !== "arn" || parts[2] !== "ecs") return undefined;
  const resource = parts.slice(5).join(":");
  return resource.startsWith(`${kind}/`) ? resource.slice(kind.length + 1) : undefined;
}

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "event"}: ${i.message}`).join("; ");
}

/**
 * The EventBridge pattern of the rule that forwards ECS events to the
 * controller's queue: the three detail types, on the managed clusters only.
 * Every one of them names its service or task in `resources`, whose ARN
 * carries the cluster, so one `prefix` filter per cluster family covers all
 * three (a Deployment State Change has no detail.clusterArn to match on).
 * `arnHead` is arn:<partition>:ecs:<region>:<account>:.
 */
export function ecsEventPattern(names: HintNames, arnHead: string): Record<string, unknown> {
  const clusters = [`${names.namePrefix}-t-`, `${names.poolCluster}/`, `${names.advancedCluster}/`];
  return {
    source: [ECS_EVENT_SOURCE],
    "detail-type": [...ECS_EVENT_DETAIL_TYPES],
    resources: ["service", "task"].flatMap((kind) => clusters.map((c) => ({ prefix: `${arnHead}${kind}/${c}` }))),
  };
}
