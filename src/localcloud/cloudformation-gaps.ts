import { CloudFormationClient, DescribeStackResourcesCommand, GetTemplateCommand } from "@aws-sdk/client-cloudformation";
import { DeleteRuleCommand, DeleteTargetGroupCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import type { Logger } from "pino";
import { awsClient, RETRIES } from "../providers/aws-clients.js";

/**
 * moto's DeleteStack leaves some of the stack's resources behind, listener
 * rules and target groups among them. On real AWS they go with the stack; in
 * the local cloud a leftover rule would keep its priority taken on the
 * listener (the pool stack's catch-all holds 50000), and a leftover target
 * group its name, so the stack could never be created again. The local cloud
 * deletes them as CloudFormation would, sparing any the template retains
 * (DeletionPolicy Retain, which moto itself honours for what it deletes).
 * This is a gap of the simulation, so it is mended here and never in
 * product code.
 *
 * Checked against moto 5.2.1 and needing no mending: DeletionPolicy Retain
 * (moto skips such resources on DeleteStack; the tables of the tenant and
 * pool stacks survive) and a table's StreamSpecification (DescribeTable shows
 * the stream and its LatestStreamArn). Left as they are, since no product
 * code depends on them: moto ignores UpdateReplacePolicy and
 * PointInTimeRecoverySpecification, and GetRolePolicy returns a role's inline
 * policies created through CloudFormation as a Python dict repr, not
 * URL-encoded JSON.
 */
const LEFTOVER_TYPES = ["AWS::ElasticLoadBalancingV2::ListenerRule", "AWS::ElasticLoadBalancingV2::TargetGroup"] as const;

export class CloudFormationGaps {
  readonly #cfn: CloudFormationClient;
  readonly #elbv2: ElasticLoadBalancingV2Client;
  readonly #log: Logger | undefined;

  constructor(motoEndpoint: string, region: string, log?: Logger) {
    const moto = { endpoint: motoEndpoint, region, credentials: { accessKeyId: "test", secretAccessKey: "test" } };
    this.#cfn = awsClient(CloudFormationClient, moto, RETRIES.none);
    this.#elbv2 = awsClient(ElasticLoadBalancingV2Client, moto, RETRIES.none);
    this.#log = log;
  }

  /** Reads what moto would leave behind; call before forwarding DeleteStack, then run the returned cleanup after it. */
  async beforeDeleteStack(stackName: string): Promise<() => Promise<void>> {
    let resources: { type: string; id: string }[] = [];
    try {
      const res = await this.#cfn.send(new DescribeStackResourcesCommand({ StackName: stackName }));
      const retained = await this.#retained(stackName);
      resources = (res.StackResources ?? []).flatMap((r) =>
        r.ResourceType &&
        r.PhysicalResourceId &&
        (LEFTOVER_TYPES as readonly string[]).includes(r.ResourceType) &&
        !retained.has(r.LogicalResourceId ?? "")
          ? [{ type: r.ResourceType, id: r.PhysicalResourceId }]
          : [],
      );
    } catch {
      return async () => {}; // no such stack: nothing will be left behind
    }
    return async () => {
      // Rules first: a target group still used by a rule cannot be deleted.
      for (const r of resources.filter((x) => x.type === LEFTOVER_TYPES[0]))
        await this.#quietly(() => this.#elbv2.send(new DeleteRuleCommand({ RuleArn: r.id })), r.id);
      for (const r of resources.filter((x) => x.type === LEFTOVER_TYPES[1]))
        await this.#quietly(() => this.#elbv2.send(new DeleteTargetGroupCommand({ TargetGroupArn: r.id })), r.id);
    };
  }

  /** Logical ids the stack's template keeps on deletion. */
  async #retained(stackName: string): Promise<Set<string>> {
    const body = (await this.#cfn.send(new GetTemplateCommand({ StackName: stackName }))).TemplateBody ?? "";
    return retainedLogicalIds(body);
  }

  close(): void {
    this.#cfn.destroy();
    this.#elbv2.destroy();
  }

  async #quietly(call: () => Promise<unknown>, id: string): Promise<void> {
    try {
      await call();
      this.#log?.debug({ resource: id }, "removed what moto's DeleteStack left behind");
    } catch {
      /* already gone */
    }
  }
}

/** Logical ids with DeletionPolicy Retain in a JSON template; none for a template that is not JSON (this repo sends only JSON). */
function retainedLogicalIds(templateBody: string): Set<string> {
  let resources: unknown;
  try {
    resources = (JSON.parse(templateBody) as { Resources?: unknown }).Resources;
  } catch {
    return new Set();
  }
  if (resources === null || typeof resources !== "object") return new Set();
  return new Set(
    Object.entries(resources as Record<string, unknown>).flatMap(([id, r]) =>
      r !== null && typeof r === "object" && (r as Record<string, unknown>)["DeletionPolicy"] === "Retain" ? [id] : [],
    ),
  );
}

/** The StackName of a query-protocol DeleteStack request body. */
export function stackNameOf(body: Buffer): string | undefined {
  return new URLSearchParams(body.toString("utf8")).get("StackName") ?? undefined;
}

/**
 * A query-protocol UpdateStack body whose TemplateBody carries the request's
 * tags in its Metadata; undefined when the request has no tags or its
 * template is not JSON (nothing to mend then).
 */
export function withTagsInMetadata(body: Buffer): Buffer | undefined {
  const form = new URLSearchParams(body.toString("utf8"));
  const tags: string[] = [];
  for (let n = 1; form.has(`Tags.member.${n}.Key`); n++)
    tags.push(`${form.get(`Tags.member.${n}.Key`) ?? ""}=${form.get(`Tags.member.${n}.Value`) ?? ""}`);
  const templateBody = form.get("TemplateBody");
  if (tags.length === 0 || templateBody === null) return undefined;
  let template: Record<string, unknown>;
  try {
    template = JSON.parse(templateBody) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const metadata = (template["Metadata"] ?? {}) as Record<string, unknown>;
  form.set("TemplateBody", JSON.stringify({ ...template, Metadata: { ...metadata, LocalCloudStackTags: tags.sort().join(",") } }));
  return Buffer.from(form.toString(), "utf8");
}
