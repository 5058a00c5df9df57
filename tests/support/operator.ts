import { DeleteItemCommand, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { pino } from "pino";
import { loadConfig, type Config } from "../../src/config.js";
import { startController, type RunningController } from "../../src/operator/run-controller.js";
import { createAwsClients, type AwsClients } from "../../src/providers/aws-clients.js";
import type { TenantStatus } from "../../src/tenants/status.js";
import { EventSink, eventually } from "./event-sink.js";
import { setAttributes } from "./records.js";
import { startTestCloud, type TestCloud } from "./localcloud.js";
import { parseExposition } from "./prom-text.js";

/** A local cloud plus a running controller and helpers to edit records and read the outcome. */
export interface OperatorHarness {
  readonly cloud: TestCloud;
  readonly config: Config;
  readonly clients: AwsClients;
  readonly sink: EventSink;
  controller: RunningController;
  startController(overrides?: Record<string, string>): Promise<RunningController>;
  put(record: Record<string, unknown>): Promise<void>;
  update(tenantId: string, set: Record<string, unknown>): Promise<void>;
  remove(tenantId: string): Promise<void>;
  item(tenantId: string): Promise<Record<string, unknown> | undefined>;
  status(tenantId: string): Promise<TenantStatus | undefined>;
  waitForPhase(tenantId: string, phase: string, timeoutMs?: number): Promise<TenantStatus>;
  stop(): Promise<void>;
  /** Leases lost while leading, summed over every controller the harness started (tenant_operator_lease_lost_total). */
  leaseLosses(): Promise<number>;
}

export interface HarnessOptions {
  /** Load balancers the bootstrap makes (cloud.account.listenerArns). @default 1 */
  readonly albs?: number;
  /** How many of them the controllers use (LISTENER_ARNS, the first ones); a test adds the others by restarting one. @default all */
  readonly listeners?: number;
  /** Controllers take ECS events as hints from the bootstrap's queue (ECS_EVENTS_QUEUE_URL). @default false */
  readonly ecsEvents?: boolean;
}

export async function startHarness(env: Record<string, string> = {}, options: HarnessOptions = {}): Promise<OperatorHarness> {
  // 4 shards: with 3-second leases, 32 renewals a second would crowd the local cloud's one-at-a-time DynamoDB writes.
  const cloud = await startTestCloud({
    speed: 200,
    env: { RESYNC_SECONDS: "3600", LEASE_SECONDS: "5", SHARD_COUNT: "4", CONCURRENCY: "8", ...env },
    ...(options.albs !== undefined ? { albs: options.albs } : {}),
    ...(options.ecsEvents === true ? { ecsEvents: true } : {}),
  });
  if (options.listeners !== undefined) env = { LISTENER_ARNS: cloud.account.listenerArns.slice(0, options.listeners).join(","), ...env };
  const config = loadConfig({ ...cloud.env, ...env });
  const clients = createAwsClients(config);
  const sink = await EventSink.create(clients.eventbridge, clients.sqs, config.eventBusName, config.eventSource);
  const log = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });
  const controllers: RunningController[] = [];
  const start = async (overrides: Record<string, string> = {}) => {
    const c = await startController(loadConfig({ ...cloud.env, ...env, ...overrides }), log, {
      pollMs: 100,
      maxPollMs: 400,
      streamPollMs: 100,
      rolloutTickMs: 500,
      http: false,
      shutdownTimeoutMs: 5000,
    });
    controllers.push(c);
    return c;
  };
  const table = config.tenantsTable;
  const h: OperatorHarness = {
    cloud,
    config,
    clients,
    sink,
    controller: undefined as unknown as RunningController,
    startController: start,
    put: async (record) => {
      await clients.dynamodb.send(new PutItemCommand({ TableName: table, Item: marshall(record, { removeUndefinedValues: true }) }));
    },
    update: (tenantId, set) => setAttributes(clients.dynamodb, table, tenantId, set),
    remove: async (tenantId) => {
      await clients.dynamodb.send(new DeleteItemCommand({ TableName: table, Key: marshall({ tenantId }) }));
    },
    item: async (tenantId) => {
      const res = await clients.dynamodb.send(new GetItemCommand({ TableName: table, Key: marshall({ tenantId }), ConsistentRead: true }));
      return res.Item ? unmarshall(res.Item) : undefined;
    },
    status: async (tenantId) => (await h.item(tenantId))?.["status"] as TenantStatus | undefined,
    waitForPhase: (tenantId, phase, timeoutMs = 30_000) =>
      eventually(
        async () => {
          const s = await h.status(tenantId);
          return s?.phase === phase ? s : undefined;
        },
        `${tenantId} to be ${phase}`,
        timeoutMs,
      ),
    leaseLosses: async () => {
      let lost = 0;
      for (const c of controllers) {
        const family = parseExposition(await c.metrics.render()).get("tenant_operator_lease_lost_total");
        lost += family?.samples.reduce((sum, sample) => sum + sample.value, 0) ?? 0;
      }
      return lost;
    },
    stop: async () => {
      for (const c of controllers) await c.stop();
      clients.destroy();
      await cloud.stop();
    },
  };
  h.controller = await start();
  return h;
}
