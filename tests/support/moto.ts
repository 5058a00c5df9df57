import { startLocalCloud, type SchedulerControl } from "../../src/localcloud/index.js";

export { freePort } from "../../src/localcloud/moto-process.js";

/**
 * A moto server on a free loopback port, for integration tests, reached through
 * the local cloud's front door in passthrough mode. moto's own conditional
 * writes are not atomic under concurrency; the front serializes DynamoDB writes
 * (src/localcloud/dynamodb-serializer.ts) so conditions hold as in DynamoDB.
 * Everything else (ECS, CloudFormation, ...) reaches moto untouched, so tests
 * still see plain moto there. Only 127.0.0.1 is ever contacted.
 */
export interface MotoServer {
  /** The front door: point SDK clients here. */
  readonly endpoint: string;
  readonly port: number;
  /** moto itself, bypassing the front (its DynamoDB is not atomic: for debugging only). */
  readonly motoEndpoint: string;
  /** Faults, call counts and the rest of the local cloud's controls. */
  readonly control: SchedulerControl;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<MotoServer> {
  const cloud = await startLocalCloud({ port: 0, mode: "passthrough" });
  return {
    endpoint: cloud.endpoint,
    port: cloud.port,
    motoEndpoint: cloud.motoEndpoint,
    control: cloud.scheduler,
    stop: () => cloud.stop(),
  };
}

/** Environment for SDK clients pointed at a local endpoint, with throwaway credentials. */
export function localAwsEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
  };
}
