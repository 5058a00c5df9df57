import { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ECSClient } from "@aws-sdk/client-ecs";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { CognitoIdentityProviderClient } from "@aws-sdk/client-cognito-identity-provider";
import { S3Client } from "@aws-sdk/client-s3";
import { ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { HandlerExecutionContext, MiddlewareStack } from "@smithy/types";
import type { Config } from "../config.js";
import type { CallCounter, CallKind, CallOutcome } from "./call-counter.js";
import { errorName, isThrottle } from "./aws-errors.js";

/** Every AWS client the controller uses, built once with one configuration. */
export interface AwsClients {
  readonly ecs: ECSClient;
  readonly dynamodb: DynamoDBClient;
  readonly streams: DynamoDBStreamsClient;
  readonly eventbridge: EventBridgeClient;
  readonly cloudformation: CloudFormationClient;
  readonly sqs: SQSClient;
  readonly ec2: EC2Client;
  readonly elbv2: ElasticLoadBalancingV2Client;
  readonly s3: S3Client;
  readonly cognito: CognitoIdentityProviderClient;
  readonly servicediscovery: ServiceDiscoveryClient;
  /** Closes the clients' sockets; call on shutdown. */
  destroy(): void;
}

export interface AwsClientOptions {
  /**
   * "adaptive" adds client-side rate limiting once the service throttles, so a
   * burst (a thousand tenants onboarding) slows down instead of burning
   * retries against ECS's per-account buckets. @default "adaptive"
   */
  readonly retryMode?: "adaptive" | "standard";
  /** HTTP attempts per logical call, the first included. @default 5 */
  readonly maxAttempts?: number;
}

export function createAwsClients(
  config: Pick<Config, "region" | "endpoint">,
  counter?: CallCounter,
  options: AwsClientOptions = {},
): AwsClients {
  // The SDK reads AWS_ENDPOINT_URL by itself too; passing the configured one
  // explicitly makes the validated config, not the environment, authoritative.
  const base = {
    region: config.region,
    retryMode: options.retryMode ?? "adaptive",
    maxAttempts: options.maxAttempts ?? 5,
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
  };
  const clients = {
    ecs: new ECSClient(base),
    dynamodb: new DynamoDBClient(base),
    streams: new DynamoDBStreamsClient(base),
    eventbridge: new EventBridgeClient(base),
    cloudformation: new CloudFormationClient(base),
    sqs: new SQSClient(base),
    ec2: new EC2Client(base),
    elbv2: new ElasticLoadBalancingV2Client(base),
    // Path-style addressing with an endpoint override: a local endpoint has no per-bucket host names.
    s3: new S3Client({ ...base, forcePathStyle: config.endpoint !== undefined }),
    cognito: new CognitoIdentityProviderClient(base),
    servicediscovery: new ServiceDiscoveryClient(base),
  };
  if (counter !== undefined) {
    for (const [service, client] of Object.entries(clients)) instrumentClient(client, service, counter);
  }
  return {
    ...clients,
    destroy: () => {
      for (const client of Object.values(clients)) client.destroy();
    },
  };
}

/** Anything with an SDK v3 middleware stack (every generated client). */
interface Instrumentable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each client has its own input/output unions; the counter reads neither
  readonly middlewareStack: MiddlewareStack<any, any>;
}

/**
 * Counts the client's calls in `counter` under `service`: once per logical
 * call (initialize step, outside the retry loop) and once per HTTP attempt
 * (deserialize step, inside the retry loop, where the parsed error is seen).
 * Safe to call once per client; a second call replaces the first.
 */
export function instrumentClient(client: Instrumentable, service: string, counter: CallCounter): void {
  const count =
    (kind: CallKind) => (next: (args: unknown) => Promise<unknown>, context: HandlerExecutionContext) => async (args: unknown) => {
      const started = performance.now();
      const operation = (context.commandName ?? "Unknown").replace(/Command$/, "");
      try {
        const out = await next(args);
        counter.record({ kind, service, operation, outcome: "ok", durationMs: performance.now() - started });
        return out;
      } catch (err) {
        const outcome: CallOutcome = isThrottle(err) ? "throttled" : "error";
        counter.record({ kind, service, operation, outcome, durationMs: performance.now() - started, errorName: errorName(err) });
        throw err;
      }
    };
  client.middlewareStack.add(count("call") as never, { step: "initialize", name: "operatorCallCounter", priority: "high", override: true });
  client.middlewareStack.add(count("attempt") as never, {
    step: "deserialize",
    name: "operatorAttemptCounter",
    priority: "high",
    override: true,
  });
}
