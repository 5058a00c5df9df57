import { loadAccountNames, loadConfig, type Config } from "../../src/config.js";
import {
  bootstrapAccount,
  localAwsClients,
  localAwsEnv,
  startLocalCloud,
  type BootstrapResult,
  type LocalAwsClients,
  type SchedulerControl,
} from "../../src/localcloud/index.js";
import type { SimTiming } from "../../src/localcloud/ecs-simulation.js";

/**
 * A bootstrapped local cloud for integration tests: moto and the local ECS
 * scheduler on free loopback ports, the account's VPC, tables, bus, clusters
 * and ALB in place, and a Config pointing at it all.
 *
 * Simulated ECS time is frozen by default (speed 0): deployments move only
 * when the test calls control.advance(ms), so assertions do not race the
 * clock. Pass speed (e.g. 100) for tests that wait for convergence instead.
 * Call counts are reset after the bootstrap, so control.ecsCalls() shows only
 * the test's own calls.
 */
export interface TestCloud {
  readonly endpoint: string;
  /** AWS_* variables plus SUBNETS and SECURITY_GROUPS, ready for loadConfig or a child process. */
  readonly env: Readonly<Record<string, string>>;
  readonly config: Config;
  readonly account: BootstrapResult;
  readonly clients: LocalAwsClients;
  readonly control: SchedulerControl;
  stop(): Promise<void>;
}

export interface TestCloudOptions {
  /** @default 0 (frozen; use control.advance) */
  readonly speed?: number;
  /** @default false */
  readonly throttling?: boolean;
  readonly timing?: Partial<SimTiming>;
  /** Extra environment for the Config (TENANTS_TABLE, NAME_PREFIX, EVENT_BUS_NAME...). */
  readonly env?: Readonly<Record<string, string>>;
  /** An S3 bucket for tenant data backups, created by the bootstrap (account.backupBucket). */
  readonly backupBucket?: string;
  /** Load balancers the bootstrap makes, each with a listener (account.listenerArns, LISTENER_ARNS). @default 1 */
  readonly albs?: number;
  /**
   * The scheduler publishes ECS's events (as `npm start` does) and the env and
   * Config carry ECS_EVENTS_QUEUE_URL (the bootstrap's queue), so controllers
   * take them as hints. Off by default, so other tests and the benchmarks put
   * no event traffic on moto. @default false
   */
  readonly ecsEvents?: boolean;
}

export async function startTestCloud(options: TestCloudOptions = {}): Promise<TestCloud> {
  const cloud = await startLocalCloud({
    port: 0,
    speed: options.speed ?? 0,
    throttling: options.throttling ?? false,
    ecsEvents: options.ecsEvents === true,
    ...(options.timing !== undefined ? { timing: options.timing } : {}),
  });
  try {
    const baseEnv = { ...localAwsEnv(cloud.endpoint), ...options.env };
    // The names come from the Config; the network ids it requires do not exist yet.
    const names = loadAccountNames(baseEnv);
    const clients = localAwsClients(cloud.endpoint, names.region);
    const account = await bootstrapAccount(clients, {
      ...names,
      ...(options.backupBucket !== undefined ? { backupBucket: options.backupBucket } : {}),
      ...(options.albs !== undefined ? { albs: options.albs } : {}),
    });
    const env = {
      ...baseEnv,
      SUBNETS: account.subnets.join(","),
      SECURITY_GROUPS: account.securityGroups.join(","),
      LISTENER_ARNS: account.listenerArns.join(","),
      VPC_ID: account.vpcId,
      ...(account.ecsEventsQueueUrl !== undefined && options.ecsEvents === true ? { ECS_EVENTS_QUEUE_URL: account.ecsEventsQueueUrl } : {}),
    };
    cloud.scheduler.resetCalls();
    return {
      endpoint: cloud.endpoint,
      env,
      config: loadConfig(env),
      account,
      clients,
      control: cloud.scheduler,
      stop: async () => {
        for (const client of [clients.ec2, clients.dynamodb, clients.eventbridge, clients.ecs, clients.elbv2, clients.s3, clients.sqs])
          client.destroy();
        await cloud.stop();
      },
    };
  } catch (err) {
    await cloud.stop();
    throw err;
  }
}
