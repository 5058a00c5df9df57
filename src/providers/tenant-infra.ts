import type { Fence, InfraPort, InfraRemoval, InfraState, PlannedCall, TenantInfra } from "../operator/ports.js";
import { stackName } from "../tiers/naming.js";
import { observeAndDecide, plannedCall } from "../reconciler/external.js";
import { decideStack } from "../tiers/stack-decide.js";
import { MIN_PRIORITY, tenantStackOutputs, tenantStackTemplate } from "../tiers/stack-template.js";
import type { PriorityAllocator } from "./priority-allocator.js";
import { STACK_CALLS, type StackProvider } from "./stack-provider.js";

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

  /**
   * The same observe and decideStack that ensure/remove run, rendered instead
   * of executed: plan lists exactly the stack call the controller would make.
   */
  async preview(tenantId: string, tier: "advanced" | "premium" | undefined): Promise<readonly PlannedCall[]> {
    const name = stackName(this.#settings.namePrefix, tenantId);
    const priority = await this.#priorities.get(tenantId);
    // Without a claimed priority the number ensure would claim is unknown
    // here; the lowest one stands in. It only shapes the hash, which matters
    // only for a stack that exists without a priority (ensure then claims one
    // and updates the stack to it).
    const desired = tier === undefined ? undefined : this.#template(tenantId, tier, priority ?? MIN_PRIORITY);
    const { step } = await observeAndDecide(this.#stacks, name, desired, decideStack);
    const stackCall = plannedCall(step, name, STACK_CALLS);
    const calls: PlannedCall[] = [];
    if (tier === undefined) {
      if (stackCall !== undefined) calls.push(stackCall);
      if (priority !== undefined) calls.push({ call: "dynamodb:TransactWriteItems", target: `priority ${priority}`, reason: "free the listener-rule priority once the stack is gone" });
      return calls;
    }
    if (priority === undefined) calls.push({ call: "dynamodb:TransactWriteItems", target: "priority", reason: "claim the lowest free listener-rule priority" });
    if (stackCall !== undefined) calls.push(stackCall);
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
