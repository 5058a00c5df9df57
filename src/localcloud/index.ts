import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ECSClient } from "@aws-sdk/client-ecs";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { Logger } from "pino";
import { awsClient, RETRIES, type AwsTarget } from "../providers/aws-clients.js";
import type { BootstrapClients } from "./bootstrap.js";
import { startEcsScheduler, type SchedulerControl, type SchedulerMode } from "./ecs-scheduler.js";
import type { SimTiming } from "./ecs-simulation.js";
import { startMotoProcess } from "./moto-process.js";

/**
 * The local cloud: moto on a free loopback port behind the local ECS
 * scheduler, which serves every AWS API on one endpoint (127.0.0.1:4566 by
 * default). Used by `npm start`, integration tests and benchmarks. DynamoDB
 * writes are serialized there, so conditions hold as in DynamoDB
 * (dynamodb-serializer.ts); S3 clients need forcePathStyle.
 */

export { bootstrapAccount, type BootstrapClients, type BootstrapNames, type BootstrapResult } from "./bootstrap.js";
export type { SchedulerControl, SchedulerMode, SchedulerSnapshot } from "./ecs-scheduler.js";
export type { FaultRule } from "./faults.js";
export type { SimTiming } from "./ecs-simulation.js";
export { MotoNotFoundError, MOTO_NOT_FOUND } from "./moto-process.js";

export interface LocalCloudOptions {
  /** Port of the AWS endpoint on 127.0.0.1; 0 picks a free one. @default 4566 */
  readonly port?: number;
  /** Simulated ECS time per real time. @default 10 */
  readonly speed?: number;
  /** Enforce ECS's documented API throttles. @default false */
  readonly throttling?: boolean;
  readonly timing?: Partial<SimTiming>;
  readonly log?: Logger;
  /** @default env MOTO_SERVER_BIN, else "moto_server" */
  readonly motoBin?: string;
  /** "passthrough" leaves ECS and CloudFormation to plain moto (DynamoDB is serialized either way). @default "simulate" */
  readonly mode?: SchedulerMode;
  /** Publish ECS's events to moto's default EventBridge bus, as ECS does. @default true */
  readonly ecsEvents?: boolean;
}

export interface LocalCloud {
  /** http://127.0.0.1:<port>: point every SDK client here. */
  readonly endpoint: string;
  readonly port: number;
  /** moto itself, bypassing the scheduler (for debugging only). */
  readonly motoEndpoint: string;
  readonly motoPid: number;
  readonly scheduler: SchedulerControl;
  /** Closes the endpoint and stops moto; idempotent. */
  stop(): Promise<void>;
}

export const LOCAL_REGION = "us-east-1";
export const LOCAL_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" } as const;

export async function startLocalCloud(options: LocalCloudOptions = {}): Promise<LocalCloud> {
  const moto = await startMotoProcess({
    ...(options.motoBin !== undefined ? { bin: options.motoBin } : {}),
    ...(options.log !== undefined ? { log: options.log } : {}),
  });
  let scheduler;
  try {
    scheduler = await startEcsScheduler({
      motoEndpoint: moto.endpoint,
      port: options.port ?? 4566,
      throttling: options.throttling ?? false,
      ...(options.mode !== undefined ? { mode: options.mode } : {}),
      ...(options.ecsEvents !== undefined ? { ecsEvents: options.ecsEvents } : {}),
      ...(options.speed !== undefined ? { speed: options.speed } : {}),
      ...(options.timing !== undefined ? { timing: options.timing } : {}),
      ...(options.log !== undefined ? { log: options.log } : {}),
    });
  } catch (err) {
    await moto.stop();
    throw err;
  }
  const running = scheduler;
  let stopping: Promise<void> | undefined;
  options.log?.info({ endpoint: running.endpoint, moto: moto.endpoint }, "local cloud ready");
  return {
    endpoint: running.endpoint,
    port: running.port,
    motoEndpoint: moto.endpoint,
    motoPid: moto.pid,
    scheduler: running,
    stop: () => (stopping ??= running.close().finally(() => moto.stop())),
  };
}

/** The bootstrap's clients, S3 and SQS included. */
export type LocalAwsClients = BootstrapClients & { readonly s3: S3Client; readonly sqs: SQSClient };

/** Where a client reaches the local cloud: its endpoint, with throwaway credentials. */
export function localTarget(endpoint: string, region = LOCAL_REGION): AwsTarget {
  return { endpoint, region, credentials: LOCAL_CREDENTIALS };
}

/** SDK clients for the bootstrap (and anything else) pointed at a local endpoint with throwaway credentials. */
export function localAwsClients(endpoint: string, region = LOCAL_REGION): LocalAwsClients {
  const target = localTarget(endpoint, region);
  return {
    ec2: awsClient(EC2Client, target, RETRIES.standard),
    dynamodb: awsClient(DynamoDBClient, target, RETRIES.standard),
    eventbridge: awsClient(EventBridgeClient, target, RETRIES.standard),
    ecs: awsClient(ECSClient, target, RETRIES.standard),
    elbv2: awsClient(ElasticLoadBalancingV2Client, target, RETRIES.standard),
    s3: awsClient(S3Client, target, RETRIES.standard),
    sqs: awsClient(SQSClient, target, RETRIES.standard),
  };
}

/** The environment a controller (or the aws CLI) needs to talk to the local cloud. */
export function localAwsEnv(endpoint: string, region = LOCAL_REGION): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  };
}
