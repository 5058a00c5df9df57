import type { Logger } from "pino";
import { CloudFormationGaps, stackNameOf, withTagsInMetadata } from "./cloudformation-gaps.js";
import { forward, type AwsRequest, type HttpAnswer, type Upstream } from "./proxy.js";

/** The CloudFormation calls whose moto answers the local cloud mends (cloudformation-gaps.ts); the rest pass through. */
export class CloudFormationHandler {
  readonly #moto: Upstream;
  readonly #gaps: CloudFormationGaps;

  constructor(moto: Upstream, motoEndpoint: string, region: string, log: Logger | undefined) {
    this.#moto = moto;
    this.#gaps = new CloudFormationGaps(motoEndpoint, region, log);
  }

  /** Whether handle() mends this call; the others go to moto untouched. */
  mends(call: AwsRequest): boolean {
    return call.service === "cloudformation" && (call.action === "DeleteStack" || call.action === "UpdateStack");
  }

  handle(call: AwsRequest): Promise<HttpAnswer> {
    return call.action === "DeleteStack" ? this.#deleteStack(call) : this.#updateStack(call);
  }

  close(): void {
    this.#gaps.close();
  }

  /**
   * moto answers "No updates are to be performed" to an update that changes
   * only the stack's tags, and keeps the old tags; CloudFormation applies
   * them (and propagates them). The local cloud resends such an update with
   * the tags recorded in the template's Metadata, which moto sees as a change.
   */
  async #updateStack(call: AwsRequest): Promise<HttpAnswer> {
    const answer = await forward(this.#moto, call);
    if (answer.status < 400 || !answer.body.toString("utf8").includes("No updates are to be performed")) return answer;
    const retry = withTagsInMetadata(call.body);
    return retry === undefined ? answer : forward(this.#moto, { ...call, body: retry });
  }

  async #deleteStack(call: AwsRequest): Promise<HttpAnswer> {
    const name = stackNameOf(call.body);
    const cleanup = name === undefined ? undefined : await this.#gaps.beforeDeleteStack(name);
    const answer = await forward(this.#moto, call);
    if (answer.status < 300) await cleanup?.();
    return answer;
  }
}
