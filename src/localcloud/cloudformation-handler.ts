import type { Logger } from "pino";
import { CloudFormationGaps, stackNameOf, templateBodyOf, withTagsInMetadata } from "./cloudformation-gaps.js";
import { awsError, forward, type AwsRequest, type HttpAnswer, type Upstream } from "./proxy.js";

/** The CloudFormation calls whose moto answers the local cloud mends (cloudformation-gaps.ts); the rest pass through. */
export class CloudFormationHandler {
  readonly #moto: Upstream;
  readonly #gaps: CloudFormationGaps;
  readonly #log: Logger | undefined;

  constructor(moto: Upstream, motoEndpoint: string, region: string, log: Logger | undefined) {
    this.#moto = moto;
    this.#gaps = new CloudFormationGaps(motoEndpoint, region, log);
    this.#log = log;
  }

  /** Whether handle() mends this call; the others go to moto untouched. */
  mends(call: AwsRequest): boolean {
    return (
      call.service === "cloudformation" && (call.action === "DeleteStack" || call.action === "UpdateStack" || call.action === "CreateStack")
    );
  }

  async handle(call: AwsRequest): Promise<HttpAnswer> {
    if (call.action === "DeleteStack") return this.#deleteStack(call);
    if (call.action === "UpdateStack") return this.#mended(call, await this.#updateStack(call));
    return this.#mended(call, await forward(this.#moto, call));
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

  /**
   * After a CreateStack or UpdateStack moto accepted: makes what moto's
   * CloudFormation skipped or flattened (cloudformation-gaps.ts). moto
   * finishes a stack operation before answering, so it is all there now.
   */
  async #mended(call: AwsRequest, answer: HttpAnswer): Promise<HttpAnswer> {
    const name = stackNameOf(call.body);
    if (answer.status >= 300 || name === undefined) return answer;
    try {
      await this.#gaps.afterCreateOrUpdate(name, templateBodyOf(call.body));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#log?.error({ err, stack: name }, "local cloud could not make what moto's CloudFormation skipped");
      return awsError(call, "InternalFailure", `stack ${name}: ${message}`, 500);
    }
    return answer;
  }

  async #deleteStack(call: AwsRequest): Promise<HttpAnswer> {
    const name = stackNameOf(call.body);
    const cleanup = name === undefined ? undefined : await this.#gaps.beforeDeleteStack(name);
    const answer = await forward(this.#moto, call);
    if (answer.status < 300) await cleanup?.();
    return answer;
  }
}
