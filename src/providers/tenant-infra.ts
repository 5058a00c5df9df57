import type { PoolInfra } from "../tiers/model.js";
import type { Fence, InfraPort, InfraRemoval, InfraState, PlannedCall, PoolInfraState, TenantInfra } from "../ports.js";
import { poolStackName, stackName } from "../tiers/naming.js";
import { observeAndDecide, plannedCall } from "../reconciler/external.js";
import { decideStack } from "../tiers/stack-decide.js";
import { tenantStackOutputs, tenantStackTemplate } from "../tiers/stack-template.js";
import { poolStackOutputs, poolStackTemplate } from "../tiers/pool-template.js";
import { STACK_CALLS, type DesiredStack, type EnsureResult, type StackProvider } from "./stack-provider.js";

export interface TenantInfraSettings {
  readonly namePrefix: string;
  /** The shared listener the pool's catch-all rule hangs off. */
  readonly listenerArn: string;
  readonly vpcId: string;
  readonly logRetentionDays?: number;
}

/**
 * InfraPort on CloudFormation: one stack per silo tenant (tables, roles, log
 * group, target group) and one for the pool. Listener rules of tenants are
 * not in their stacks: the controller keeps them itself (TenantRoutes), so
 * that moving where a tenant is served is one ELBv2 call, not a stack update.
 */
export class CloudFormationTenantInfra implements InfraPort {
  readonly #stacks: StackProvider;
  readonly #settings: TenantInfraSettings;

  constructor(stacks: StackProvider, settings: TenantInfraSettings) {
    this.#stacks = stacks;
    this.#settings = settings;
  }

  async ensure(tenantId: string, tier: "advanced" | "premium", fence: Fence): Promise<InfraState> {
    const desired = this.#template(tenantId, tier);
    const result = await this.#stacks.ensure(desired, fence);
    if (result.kind !== "ready") return notReady(desired, result);
    const outputs = tenantStackOutputs(result.outputs);
    if (outputs === undefined) return lacksOutputs(desired, result.outputs);
    return { kind: "ready", infra: { ...outputs, stackId: result.stackId } };
  }

  async ensurePool(fence: Fence): Promise<PoolInfraState> {
    const desired = this.#poolTemplate();
    const result = await this.#stacks.ensure(desired, fence);
    if (result.kind !== "ready") return notReady(desired, result);
    const outputs = poolStackOutputs(result.outputs);
    if (outputs === undefined) return lacksOutputs(desired, result.outputs);
    return { kind: "ready", infra: { ...outputs, stackId: result.stackId } };
  }

  async remove(tenantId: string, fence: Fence): Promise<InfraRemoval> {
    const name = stackName(this.#settings.namePrefix, tenantId);
    const result = await this.#stacks.remove(name, fence);
    if (result.kind === "inProgress") return { kind: "inProgress", status: `stack ${name} ${result.status}` };
    if (result.kind === "failed")
      return { kind: "failed", reason: `stack ${name} ${result.status ?? "failed"}: ${result.reason}`, terminal: result.terminal };
    return { kind: "gone" };
  }

  async current(tenantId: string): Promise<TenantInfra | undefined> {
    const observed = await this.#completeStack(stackName(this.#settings.namePrefix, tenantId));
    const outputs = observed && tenantStackOutputs(observed.outputs);
    return outputs && { ...outputs, stackId: observed?.stackId ?? "" };
  }

  async currentPool(): Promise<PoolInfra | undefined> {
    const observed = await this.#completeStack(poolStackName(this.#settings.namePrefix));
    return observed && poolStackOutputs(observed.outputs);
  }

  async #completeStack(name: string) {
    const observed = await this.#stacks.observe(name);
    if (
      observed === undefined ||
      !/_COMPLETE$/.test(observed.status) ||
      observed.status.startsWith("DELETE") ||
      observed.status === "ROLLBACK_COMPLETE"
    )
      return undefined;
    return observed;
  }

  /**
   * The same observe and decideStack that ensure/remove run, rendered instead
   * of executed: plan lists exactly the stack call the controller would make.
   */
  async preview(tenantId: string, tier: "advanced" | "premium" | undefined): Promise<readonly PlannedCall[]> {
    const name = stackName(this.#settings.namePrefix, tenantId);
    const desired = tier === undefined ? undefined : this.#template(tenantId, tier);
    const { step } = await observeAndDecide(this.#stacks, name, desired, decideStack);
    const call = plannedCall(step, name, STACK_CALLS);
    return call === undefined ? [] : [call];
  }

  /** The pool stack's next call, for `tenantctl plan :pool`. */
  async previewPool(): Promise<readonly PlannedCall[]> {
    const desired = this.#poolTemplate();
    const { step } = await observeAndDecide(this.#stacks, desired.stackName, desired, decideStack);
    const call = plannedCall(step, desired.stackName, STACK_CALLS);
    return call === undefined ? [] : [call];
  }

  #template(tenantId: string, tier: "advanced" | "premium") {
    const s = this.#settings;
    return tenantStackTemplate({
      tenantId,
      tier,
      namePrefix: s.namePrefix,
      vpcId: s.vpcId,
      ...(s.logRetentionDays !== undefined ? { logRetentionDays: s.logRetentionDays } : {}),
    });
  }

  #poolTemplate() {
    const s = this.#settings;
    return poolStackTemplate({
      namePrefix: s.namePrefix,
      listenerArn: s.listenerArn,
      vpcId: s.vpcId,
      ...(s.logRetentionDays !== undefined ? { logRetentionDays: s.logRetentionDays } : {}),
    });
  }
}

function notReady(
  desired: DesiredStack,
  result: Exclude<EnsureResult, { kind: "ready" }>,
): { kind: "inProgress"; status: string } | { kind: "failed"; reason: string; terminal: boolean } {
  if (result.kind === "inProgress") return { kind: "inProgress", status: `stack ${desired.stackName} ${result.status}` };
  return { kind: "failed", reason: `stack ${desired.stackName} ${result.status ?? "failed"}: ${result.reason}`, terminal: result.terminal };
}

function lacksOutputs(
  desired: DesiredStack,
  outputs: Readonly<Record<string, string>>,
): { kind: "failed"; reason: string; terminal: boolean } {
  return {
    kind: "failed",
    reason: `stack ${desired.stackName} is complete but lacks outputs: ${Object.keys(outputs).join(", ") || "none"}`,
    terminal: true,
  };
}
