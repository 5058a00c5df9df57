import {
  DeleteTaskDefinitionsCommand,
  DeregisterTaskDefinitionCommand,
  ListTaskDefinitionsCommand,
  type ECSClient,
} from "@aws-sdk/client-ecs";
import type { Fence, RevisionPort } from "../ports.js";
import { chunks, errorName, wrapAwsError } from "./aws-errors.js";

/** DeleteTaskDefinitions takes at most 10 revisions per call. */
const DELETES_PER_CALL = 10;

/**
 * Revision hygiene (REVISIONS_TO_KEEP): every rollout adds a revision per
 * family, and ECS keeps them all. After a deployment completes, the newest
 * `keep` ACTIVE revisions of its families stay, and so does any revision a
 * service or one of its deployments runs (the one a circuit-breaker rollback
 * returns to among them); older ones are deregistered, then deleted.
 *
 * Deregistration shares ECS's 1-per-second bucket with registration, which
 * rollouts need, so each call prunes at most `maxDeregistrations` revisions;
 * whatever is left goes at the next completed deployment.
 */
export class EcsRevisionHygiene implements RevisionPort {
  readonly #ecs: ECSClient;
  readonly #max: number;

  constructor(ecs: ECSClient, options: { readonly maxDeregistrations?: number } = {}) {
    this.#ecs = ecs;
    this.#max = options.maxDeregistrations ?? 3;
  }

  async prune(
    families: readonly string[],
    keep: number,
    inUse: ReadonlySet<string>,
    fence: Fence,
  ): Promise<{ readonly deregistered: readonly string[]; readonly deleted: readonly string[] }> {
    const deregistered: string[] = [];
    const deleted: string[] = [];
    for (const family of families) {
      const active = await this.#list(family, "ACTIVE");
      const old = active.slice(keep).filter((arn) => !inUse.has(arn));
      for (const arn of old.slice(0, Math.max(0, this.#max - deregistered.length))) {
        fence.assertHeld();
        try {
          await this.#ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: arn }));
        } catch (err) {
          // Deregistered meanwhile (another prune, a person): what we wanted.
          if (errorName(err) !== "ClientException") throw wrapAwsError(err, `deregistering task definition ${arn}`);
        }
        deregistered.push(arn);
      }
      const inactive = (await this.#list(family, "INACTIVE")).filter((arn) => !inUse.has(arn));
      for (const batch of chunks(inactive, DELETES_PER_CALL)) {
        fence.assertHeld();
        try {
          const res = await this.#ecs.send(new DeleteTaskDefinitionsCommand({ taskDefinitions: batch }));
          for (const td of res.taskDefinitions ?? []) if (td.taskDefinitionArn !== undefined) deleted.push(td.taskDefinitionArn);
        } catch (err) {
          throw wrapAwsError(err, `deleting task definitions of ${family}`);
        }
      }
    }
    return { deregistered, deleted };
  }

  /** The family's revisions in one status, newest first. */
  async #list(family: string, status: "ACTIVE" | "INACTIVE"): Promise<string[]> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    try {
      do {
        const res = await this.#ecs.send(
          new ListTaskDefinitionsCommand({ familyPrefix: family, status, sort: "DESC", ...(nextToken !== undefined ? { nextToken } : {}) }),
        );
        arns.push(...(res.taskDefinitionArns ?? []));
        nextToken = res.nextToken;
      } while (nextToken !== undefined);
    } catch (err) {
      throw wrapAwsError(err, `listing ${status} revisions of ${family}`);
    }
    // The revision number, not the text, orders them (":10" after ":9").
    return arns.filter((a) => familyOf(a) === family).sort((a, b) => revisionOf(b) - revisionOf(a));
  }
}

function familyOf(arn: string): string {
  return (arn.split("/").pop() ?? "").split(":")[0] ?? "";
}

function revisionOf(arn: string): number {
  return Number(arn.split(":").pop() ?? 0);
}
