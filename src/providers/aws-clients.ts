import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
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
  /** Open sockets per client, for a client that must not queue behind the SDK's default of 50. */
  readonly maxSockets?: number;
}

/** How a client retries, by who waits on the answer. */
export const RETRIES = {
  /** The controller: adaptive backoff, five attempts (see AwsClientOptions). */
  controller: { retryMode: "adaptive", maxAttempts: 5 },
  /** A person or a test waits: the SDK's own default, three attempts with standard backoff. */
  standard: { retryMode: "standard", maxAttempts: 3 },
  /** The first answer is the answer: fault-injection tests and the local cloud's own cleanup. */
  none: { retryMode: "standard", maxAttempts: 1 },
} as const satisfies Record<string, Required<Pick<AwsClientOptions, "retryMode" | "maxAttempts">>>;

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Where and as whom a client talks. */
export interface AwsTarget {
  readonly region: string;
  /** An endpoint override (the local cloud); unset means AWS's own endpoints. */
  readonly endpoint?: string | undefined;
  /** A named profile for the SDK's credential and region chain (tenantctl's AWS_PROFILE); unset means the default. */
  readonly profile?: string | undefined;
  /** Fixed credentials; unset means the SDK's default provider chain (task role, profile, environment). */
  readonly credentials?: AwsCredentials | undefined;
}

/** The configuration every client is built with; awsClientConfig() is the one place it is decided. */
export interface AwsClientConfig {
  readonly region: string;
  readonly retryMode: "adaptive" | "standard";
  readonly maxAttempts: number;
  readonly endpoint?: string;
  readonly profile?: string;
  readonly credentials?: AwsCredentials;
  /** Set with an endpoint override: a local endpoint has no per-bucket host names. Clients other than S3 ignore it. */
  readonly forcePathStyle?: true;
  readonly requestHandler?: { readonly httpAgent: HttpAgent; readonly httpsAgent: HttpsAgent };
}

export function awsClientConfig(target: AwsTarget, retries: AwsClientOptions = {}): AwsClientConfig {
  // The SDK reads AWS_ENDPOINT_URL by itself too; passing the configured one
  // explicitly makes the validated config, not the environment, authoritative.
  return {
    region: target.region,
    retryMode: retries.retryMode ?? RETRIES.controller.retryMode,
    maxAttempts: retries.maxAttempts ?? RETRIES.controller.maxAttempts,
    ...(target.endpoint !== undefined ? { endpoint: target.endpoint, forcePathStyle: true } : {}),
    ...(target.profile !== undefined ? { profile: target.profile } : {}),
    ...(target.credentials !== undefined ? { credentials: target.credentials } : {}),
    ...(retries.maxSockets !== undefined
      ? {
          requestHandler: {
            httpAgent: new HttpAgent({ keepAlive: true, maxSockets: retries.maxSockets }),
            httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: retries.maxSockets }),
          },
        }
      : {}),
  };
}

/** One SDK client, e.g. awsClient(DynamoDBClient, target, RETRIES.standard). Every client in the repo is built here or by createAwsClients. */
export function awsClient<C>(Client: new (config: AwsClientConfig) => C, target: AwsTarget, retries: AwsClientOptions): C {
  return new Client(awsClientConfig(target, retries));
}

/**
 * Credentials from an environment that carries keys, so a command run
 * in-process with its own environment (tests, embedding) does not silently
 * use the process's; undefined otherwise (the SDK's default chain).
 */
export function credentialsFromEnv(env: Readonly<Record<string, string | undefined>>): AwsCredentials | undefined {
  const accessKeyId = env["AWS_ACCESS_KEY_ID"];
  const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"];
  const sessionToken = env["AWS_SESSION_TOKEN"];
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } : undefined;
}

export function createAwsClients(config: AwsTarget, counter?: CallCounter, options: AwsClientOptions = {}): AwsClients {
  const make = <C>(Client: new (config: AwsClientConfig) => C): C => awsClient(Client, config, options);
  const clients = {
    ecs: make(ECSClient),
    dynamodb: make(DynamoDBClient),
    streams: make(DynamoDBStreamsClient),
    eventbridge: make(EventBridgeClient),
    cloudformation: make(CloudFormationClient),
    sqs: make(SQSClient),
    ec2: make(EC2Client),
    elbv2: make(ElasticLoadBalancingV2Client),
    s3: make(S3Client),
    cognito: make(CognitoIdentityProviderClient),
    servicediscovery: make(ServiceDiscoveryClient),
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
