import { CloudFormationClient, DescribeStackResourcesCommand } from "@aws-sdk/client-cloudformation";
import { DeleteRuleCommand, DeleteTargetGroupCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import type { Logger } from "pino";

/**
 * moto's DeleteStack leaves some of the stack's resources behind, listener
 * rules and target groups among them. On real AWS they go with the stack; in
 * the local cloud a leftover rule would keep its priority taken on the
 * listener, so the next tenant given that freed priority could never create
 * its stack. The local cloud deletes them as CloudFormation would. This is a
 * gap of the simulation, so it is mended here and never in product code.
 */
const LEFTOVER_TYPES = ["AWS::ElasticLoadBalancingV2::ListenerRule", "AWS::ElasticLoadBalancingV2::TargetGroup"] as const;

export class CloudFormationGaps {
  readonly #cfn: CloudFormationClient;
  readonly #elbv2: ElasticLoadBalancingV2Client;
  readonly #log: Logger | undefined;

  constructor(motoEndpoint: string, region: string, log?: Logger) {
    const config = { endpoint: motoEndpoint, region, credentials: { accessKeyId: "test", secretAccessKey: "test" }, maxAttempts: 1 };
    this.#cfn = new CloudFormationClient(config);
    this.#elbv2 = new ElasticLoadBalancingV2Client(config);
    this.#log = log;
  }

  /** Reads what moto would leave behind; call before forwarding DeleteStack, then run the returned cleanup after it. */
  async beforeDeleteStack(stackName: string): Promise<() => Promise<void>> {
    let resources: { type: string; id: string }[] = [];
    try {
      const res = await this.#cfn.send(new DescribeStackResourcesCommand({ StackName: stackName }));
      resources = (res.StackResources ?? []).flatMap((r) =>
        r.ResourceType && r.PhysicalResourceId && (LEFTOVER_TYPES as readonly string[]).includes(r.ResourceType) ? [{ type: r.ResourceType, id: r.PhysicalResourceId }] : [],
      );
    } catch {
      return async () => {}; // no such stack: nothing will be left behind
    }
    return async () => {
      // Rules first: a target group still used by a rule cannot be deleted.
      for (const r of resources.filter((x) => x.type === LEFTOVER_TYPES[0])) await this.#quietly(() => this.#elbv2.send(new DeleteRuleCommand({ RuleArn: r.id })), r.id);
      for (const r of resources.filter((x) => x.type === LEFTOVER_TYPES[1])) await this.#quietly(() => this.#elbv2.send(new DeleteTargetGroupCommand({ TargetGroupArn: r.id })), r.id);
    };
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

/** The StackName of a query-protocol DeleteStack request body. */
export function stackNameOf(body: Buffer): string | undefined {
  return new URLSearchParams(body.toString("utf8")).get("StackName") ?? undefined;
}
