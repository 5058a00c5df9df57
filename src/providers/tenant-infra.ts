import type { Fence, InfraPort, InfraRemoval, InfraState, PlannedCall, TenantInfra } from "../operator/ports.js";
import { stackName } from "../tiers/naming.js";
import { tenantStackOutputs, tenantStackTemplate } from "../tiers/stack-template.js";
import type { PriorityAllocator } from "./priority-allocator.js";
import type { StackProvider } from "./stack-provider.js";

export interface TenantInfraSettings {
  readonly namePrefix: string;
  readonly listenerArn: string;
  readonly vpcId: string;
  readonly logRetentionDays?: number;
}

/**
 * InfraPort on CloudFormation and the DynamoDB priority allocator. The order
 * is what keeps priorities unique on the listener: a priority is claimed
 * before the stack that uses it exists, and freed only after the stack (and
 * so its listener rule) is gone.
 */
export class CloudFormationTenantInfra implements InfraPort {
  readonly #stacks: StackProvider;
  readonly #priorities: PriorityAllocator;
  readonly #settings: TenantInfraSettings;

  constructor(stacks: StackProvider, priorities: PriorityAllocator, settings: TenantInfraSettings) {
    this.#stacks = stacks;
    this.#priorities = priorities;
    this.#settings = settings;
  }

  async ensure(tenantId: string, tier: "advanced" | "premium", fence: Fence): Promise<InfraState> {
    const priority = await this.#priorities.allocate(tenantId, fence);
    const desired = this.#template(tenantId, tier, priority);
    const result = await this.#stacks.ensure(desired, fence);
    switch (result.kind) {
      case "inProgress":
        return { kind: "inProgress", status: `stack ${desired.stackName} ${result.status}` };
      case "failed":
        return { kind: "failed", reason: `stack ${desired.stackName} ${result.status ?? "failed"}: ${result.reason}`, terminal: result.terminal };
      case "ready": {
        const outputs = tenantStackOutputs(result.outputs);
        if (outputs === undefined) {
          return { kind: "failed", reason: `stack ${desired.stackName} is complete but lacks outputs: ${Object.keys(result.outputs).join(", ") || "none"}`, terminal: true };
        }
        return { kind: "ready", infra: { ...outputs, stackId: result.stackId } };
      }
    }
  }

  async remove(tenantId: string, fence: Fence): Promise<InfraRemoval> {
    const name = stackName(this.#settings.namePrefix, tenantId);
    const result = await this.#stacks.remove(name, fence);
    if (result.kind === "inProgress") return { kind: "inProgress", status: `stack ${name} ${result.status}` };
    if (result.kind === "failed") return { kind: "failed", reason: `stack ${name} ${result.status ?? "failed"}: ${result.reason}`, terminal: result.terminal };
    // The listener rule went with the stack: only now may another tenant take its priority.
    await this.#priorities.release(tenantId, fence);
    return { kind: "gone" };
  }

  async current(tenantId: string): Promise<TenantInfra | undefined> {
    const observed = await this.#stacks.observe(stackName(this.#settings.namePrefix, tenantId));
    if (observed === undefined || !/_COMPLETE$/.test(observed.status) || observed.status.startsWith("DELETE") || observed.status === "ROLLBACK_COMPLETE") return undefined;
    const outputs = tenantStackOutputs(observed.outputs);
    return outputs && { ...outputs, stackId: observed.stackId };
  }

  async preview(tenantId: string, tier: "advanced" | "premium" | undefined): Promise<readonly PlannedCall[]> {
    const name = stackName(this.#settings.namePrefix, tenantId);
    const [observed, priority] = await Promise.all([this.#stacks.observe(name), this.#priorities.get(tenantId)]);
    const calls: PlannedCall[] = [];
    if (tier === undefined) {
      if (observed !== undefined && observed.status !== "DELETE_COMPLETE" && !observed.status.endsWith("_IN_PROGRESS")) {
        calls.push({ call: "cloudformation:DeleteStack", target: name, reason: "the tenant no longer needs its infrastructure stack" });
      }
      if (priority !== undefined) calls.push({ call: "dynamodb:TransactWriteItems", target: `priority ${priority}`, reason: "free the listener-rule priority once the stack is gone" });
      return calls;
    }
    if (priority === undefined) calls.push({ call: "dynamodb:TransactWriteItems", target: "priority", reason: "claim the lowest free listener-rule priority" });
    if (observed === undefined) {
      calls.push({ call: "cloudformation:CreateStack", target: name, reason: "the tenant's infrastructure stack does not exist" });
    } else if (observed.status.endsWith("_IN_PROGRESS")) {
      // Nothing to call while CloudFormation works; the controller waits.
    } else if (["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"].includes(observed.status)) {
      calls.push({ call: "cloudformation:DeleteStack", target: name, reason: `${observed.status}: delete, then create again` });
    } else if (priority !== undefined && observed.hashTag !== this.#template(tenantId, tier, priority).hash) {
      calls.push({ call: "cloudformation:UpdateStack", target: name, reason: "template, parameters or tags changed" });
    }
    return calls;
  }

  #template(tenantId: string, tier: "advanced" | "premium", priority: number) {
    const s = this.#settings;
    return tenantStackTemplate({
      tenantId,
      tier,
      namePrefix: s.namePrefix,
      listenerArn: s.listenerArn,
      vpcId: s.vpcId,
      priority,
      ...(s.logRetentionDays !== undefined ? { logRetentionDays: s.logRetentionDays } : {}),
    });
  }
}
