import { z } from "zod";

/**
 * Fault injection for the local cloud: rules that make matching calls fail
 * with a chosen error code, arrive late, or (for a throttled DynamoDB table)
 * write only part of a BatchWriteItem, so retries, backoff and degraded
 * status can be exercised against a real server.
 */
const faultRuleSchema = z
  .object({
    /** AWS service as signed in the request (ecs, dynamodb, events, ec2, elasticloadbalancing...); any when absent. */
    service: z.string().min(1).optional(),
    /** API action (CreateService, PutItem...); any when absent. */
    action: z.string().min(1).optional(),
    /**
     * A DynamoDB table the request must name (TableName, a RequestItems key, a
     * TransactItems TableName, or the table of a table or stream ARN); any call when absent.
     */
    resource: z.string().min(1).optional(),
    /** Error code to answer with; without one the rule only adds latency. */
    errorCode: z.string().min(1).optional(),
    /** @default "Injected fault" */
    message: z.string().optional(),
    /** @default 500 for server-side codes (…ServerException, InternalError, ServiceUnavailable), else 400 */
    httpStatus: z.number().int().min(400).max(599).optional(),
    /** Chance that a matching call is hit. @default 1 */
    probability: z.number().min(0).max(1).optional(),
    /** The rule retires after hitting this many calls. @default unlimited */
    count: z.number().int().min(1).optional(),
    /** Delay added before the call proceeds or fails. @default 0 */
    latencyMs: z.number().int().min(0).max(120_000).optional(),
    /**
     * Throttles DynamoDB BatchWriteItem the way a table short of capacity does:
     * floor(n × fraction) of the n writes for the matched table (every table
     * without `resource`) are not written but returned as UnprocessedItems; a
     * batch left with nothing to write fails with
     * ProvisionedThroughputExceededException. Such a rule matches BatchWriteItem only.
     */
    unprocessedFraction: z.number().min(0).max(1).optional(),
  })
  .refine((r) => r.unprocessedFraction === undefined || r.errorCode === undefined, {
    message: "unprocessedFraction and errorCode exclude each other",
  })
  .refine((r) => r.unprocessedFraction === undefined || r.action === undefined || r.action === "BatchWriteItem", {
    message: "unprocessedFraction applies to BatchWriteItem only",
  });

export type FaultRule = z.infer<typeof faultRuleSchema>;
const faultRulesSchema = z.array(faultRuleSchema);

export interface FaultHit {
  readonly latencyMs: number;
  readonly error: { readonly code: string; readonly message: string; readonly status: number } | undefined;
  /** For a BatchWriteItem: the share of writes to hold back, and for which table (every table when undefined). */
  readonly unprocessed?: { readonly fraction: number; readonly resource: string | undefined };
}

const SERVER_SIDE = /(ServerException|InternalError|InternalFailure|ServiceUnavailable|InternalServerError)$/;

export class FaultInjector {
  readonly #random: () => number;
  #rules: { rule: FaultRule; remaining: number }[] = [];

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Replaces the rule list; throws a readable error when a rule is malformed. */
  setRules(rules: unknown): void {
    const parsed = faultRulesSchema.safeParse(rules);
    if (!parsed.success) throw new Error(`invalid fault rules: ${z.prettifyError(parsed.error)}`);
    this.#rules = parsed.data.map((rule) => ({ rule, remaining: rule.count ?? Number.POSITIVE_INFINITY }));
  }

  /** The rules still armed, with how many hits each has left. */
  rules(): readonly (FaultRule & { readonly remaining: number | null })[] {
    return this.#rules.map(({ rule, remaining }) => ({ ...rule, remaining: Number.isFinite(remaining) ? remaining : null }));
  }

  /**
   * The first armed rule that matches and fires, consumed once; undefined when
   * the call goes through untouched. `resources` are the tables the call names.
   */
  hit(service: string, action: string, resources: readonly string[] = []): FaultHit | undefined {
    for (const entry of this.#rules) {
      const { rule } = entry;
      if (entry.remaining <= 0) continue;
      if (rule.service !== undefined && rule.service !== service) continue;
      if (rule.action !== undefined && rule.action !== action) continue;
      if (rule.resource !== undefined && !resources.includes(rule.resource)) continue;
      if (rule.unprocessedFraction !== undefined && action !== "BatchWriteItem") continue;
      if (this.#random() >= (rule.probability ?? 1)) continue;
      entry.remaining -= 1;
      this.#rules = this.#rules.filter((e) => e.remaining > 0);
      const code = rule.errorCode;
      return {
        latencyMs: rule.latencyMs ?? 0,
        ...(rule.unprocessedFraction !== undefined ? { unprocessed: { fraction: rule.unprocessedFraction, resource: rule.resource } } : {}),
        error:
          code === undefined
            ? undefined
            : { code, message: rule.message ?? "Injected fault", status: rule.httpStatus ?? (SERVER_SIDE.test(code) ? 500 : 400) },
      };
    }
    return undefined;
  }
}
