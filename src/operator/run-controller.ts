import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { defaultCatalogue, loadCatalogue, type Catalogue } from "../apps/catalogue.js";
import type { Config } from "../config.js";
import { startHttpServer } from "../http/server.js";
import { EmfEmitter } from "../observability/emf.js";
import { Metrics } from "../observability/metrics.js";
import { createAwsClients, type AwsClients } from "../providers/aws-clients.js";
import { CallCounter } from "../providers/call-counter.js";
import { publishSettings, settingsOf } from "../providers/controller-settings.js";
import { DynamoDbLeaseStore } from "../providers/dynamodb-lease-store.js";
import { DynamoTenantData } from "../data/dynamo-tenant-data.js";
import { CaseClaims } from "../providers/case-claims.js";
import { DynamoRemovalLog } from "../providers/removal-log.js";
import { CloudMapNamespaces } from "../providers/cloudmap-namespaces.js";
import { CognitoIdentity } from "../providers/cognito-identity.js";
import { ListenerRoutes } from "../providers/listener-routes.js";
import { TenantRoutes } from "./tenant-routes.js";
import { EcsProvider } from "../providers/ecs.js";
import { PriorityAllocator } from "../providers/priority-allocator.js";
import { StackProvider } from "../providers/stack-provider.js";
import { CloudFormationTenantInfra } from "../providers/tenant-infra.js";
import { EventBridgePublisher } from "../providers/event-publisher.js";
import { DynamoTenantStore } from "../providers/tenant-store.js";
import { DynamoStreamSource } from "../providers/tenant-stream.js";
import { EcsEventQueue } from "../providers/ecs-event-queue.js";
import { defaultHolderId, LeaderLease } from "../reconciler/lease.js";
import { ShardLeases } from "../reconciler/shard-leases.js";
import { DynamoDbShardStore } from "../providers/dynamodb-shard-store.js";
import { KeyOwnership, serviceOwner } from "./key-ownership.js";
import { Manager } from "./manager.js";
import { RolloutExecutor } from "./rollout-executor.js";
import { DynamoRolloutStore } from "../providers/rollout-store.js";
import { DynamoDeployLedger } from "../providers/deploy-ledger.js";
import { EcsRevisionHygiene } from "../providers/revision-hygiene.js";
import { EventBridgeRolloutEvents } from "../providers/rollout-events.js";
import { TenantReconciler } from "./tenant-reconciler.js";
import { describeError } from "./errors.js";

export interface RunningController {
  readonly manager: Manager;
  readonly reconciler: TenantReconciler;
  /** The fleet rollout, while this controller leads. */
  readonly rollouts: RolloutExecutor;
  readonly lease: LeaderLease;
  /** This controller's shard leases: the tenants it reconciles. */
  readonly shards: ShardLeases;
  readonly calls: CallCounter;
  readonly metrics: Metrics;
  readonly clients: AwsClients;
  readonly httpPort: number | undefined;
  /** Graceful stop: no new keys, in-flight reconciles finish (bounded), lease released. */
  stop(): Promise<void>;
}

export interface ControllerTuning {
  /** First requeue delay while ECS converges; doubles while waiting. @default 1000 */
  readonly pollMs?: number;
  /** Cap of the requeue delay while waiting. @default 30000 */
  readonly maxPollMs?: number;
  /** Stream poll interval when a shard is idle. @default 500 */
  readonly streamPollMs?: number;
  /** Serve HTTP (health, metrics). @default true */
  readonly http?: boolean;
  /** Bound on in-flight reconciles at shutdown. @default 20000 */
  readonly shutdownTimeoutMs?: number;
  /** How often the catalogue is read and the fleet rollout stepped. @default 2000 */
  readonly rolloutTickMs?: number;
}

/** The tenant and pool infrastructure stacks. */
export function tenantInfra(config: Config, clients: Pick<AwsClients, "cloudformation">): CloudFormationTenantInfra {
  const stacks = new StackProvider(clients.cloudformation, config.cfnRoleArn !== undefined ? { roleArn: config.cfnRoleArn } : {});
  return new CloudFormationTenantInfra(stacks, {
    namePrefix: config.namePrefix,
    listenerArn: config.listenerArn,
    vpcId: config.vpcId,
    logRetentionDays: config.logRetentionDays,
  });
}

/**
 * The ports of a tenant's data and routing: the data mover, listener rules
 * at durable priorities, and the case-insensitive id claims (both on the
 * operator table). Shared by the controller and `tenantctl plan`.
 */
export function tenantParts(
  config: Config,
  clients: Pick<AwsClients, "dynamodb" | "streams" | "s3" | "elbv2" | "servicediscovery" | "cognito">,
) {
  return {
    data: new DynamoTenantData(clients.dynamodb, clients.streams, clients.s3),
    routes: new TenantRoutes(
      // A survey's reads answer observes for half a resync interval at most (docs/adr/0018).
      new ListenerRoutes(clients.elbv2, { snapshotMaxAgeMs: config.resyncSeconds * 500 }),
      new PriorityAllocator(clients.dynamodb, config.leaseTable, {
        listeners: config.listenerArns,
        perListener: config.tenantsPerListener,
      }),
      config.listenerArn,
      config.listenerArns,
    ),
    claims: new CaseClaims(clients.dynamodb, config.leaseTable),
    removals: new DynamoRemovalLog(clients.dynamodb, config.leaseTable),
    namespaces: new CloudMapNamespaces(clients.servicediscovery),
    identity: new CognitoIdentity(clients.cognito, { namePrefix: config.namePrefix, region: config.region }),
    // The account is the listener's: no STS call needed to know it.
    account: { region: config.region, accountId: accountOf(config.listenerArn) },
    backupBucket: config.backupBucket,
    drainMs: config.migrationDrainSeconds * 1000,
    apiGatewayUrl: config.apiGatewayUrl,
  };
}

/** The account id of an ARN (its fifth field). */
export function accountOf(arn: string): string {
  return arn.split(":")[4] ?? "";
}

export async function loadCatalogueFile(path: string | undefined): Promise<Catalogue> {
  if (path === undefined) return defaultCatalogue;
  return loadCatalogue(await readFile(path, "utf8"));
}

/** The composition root of `tenantctl controller`: builds every part from the config and starts it. */
export async function startController(config: Config, log: Logger, tuning: ControllerTuning = {}): Promise<RunningController> {
  const calls = new CallCounter();
  const metrics = new Metrics();
  metrics.attachCallCounter(calls);
  const clients = createAwsClients(config, calls);
  // Only the seed of the catalogue record (operator table): after that, the record rules (`tenantctl catalogue set`).
  const catalogue = await loadCatalogueFile(config.catalogueFile);

  const holder = config.holderId ?? defaultHolderId();
  const lease = new LeaderLease({
    store: new DynamoDbLeaseStore(clients.dynamodb, config.leaseTable),
    holder,
    durationMs: config.leaseSeconds * 1000,
    log,
  });
  const shards = new ShardLeases({
    store: new DynamoDbShardStore(clients.dynamodb, config.leaseTable),
    holder,
    count: config.shardCount,
    durationMs: config.leaseSeconds * 1000,
    log: log.child({ component: "shards" }),
  });
  const ownership = new KeyOwnership(lease, shards);
  // Status writes condition on the shard lease item in the operator table (one transaction).
  const store = new DynamoTenantStore(clients.dynamodb, config.tenantsTable, { leaseTable: config.leaseTable });
  // A survey's reads answer observes for half a resync interval at most (docs/adr/0018).
  const ecs = new EcsProvider(clients.ecs, { region: config.region, snapshotMaxAgeMs: config.resyncSeconds * 500 });
  // Another leader may have registered revisions meanwhile: forget what this process cached.
  lease.onAcquired(() => ecs.invalidateCaches());
  // The acting controller's settings, for `tenantctl plan` on a workstation (src/providers/controller-settings.ts).
  lease.onAcquired((token) => {
    const settings = settingsOf(config, catalogue, {
      holder: lease.holder,
      token,
      accountId: accountOf(config.listenerArn),
      now: new Date(),
    });
    publishSettings(clients.dynamodb, config.leaseTable, settings).catch((err: unknown) =>
      log.warn({ err: err instanceof Error ? err.message : String(err) }, "could not publish the controller's settings for tenantctl plan"),
    );
  });
  const rollouts = new RolloutExecutor({
    store: new DynamoRolloutStore(clients.dynamodb, config.leaseTable),
    tenants: store,
    seed: catalogue,
    settings: config.rollout,
    fence: lease,
    events: new EventBridgeRolloutEvents(clients.eventbridge, { eventBusName: config.eventBusName, source: config.eventSource }),
    log: log.child({ component: "rollout" }),
    holder: lease.holder,
    ...(tuning.rolloutTickMs !== undefined ? { tickMs: tuning.rolloutTickMs } : {}),
  });
  const parts = tenantParts(config, clients);
  const reconciler = new TenantReconciler({
    store,
    ecs,
    catalogues: rollouts,
    ledgers: new DynamoDeployLedger(clients.dynamodb, config.leaseTable),
    revisions: new EcsRevisionHygiene(clients.ecs),
    revisionsToKeep: config.revisionsToKeep,
    infra: tenantInfra(config, clients),
    ...parts,
    events: new EventBridgePublisher(clients.eventbridge, {
      eventBusName: config.eventBusName,
      source: config.eventSource,
      onUndelivered: (n) => metrics.eventPublishFailed(n),
    }),
    fence: lease,
    fenceFor: ownership.fenceFor,
    catalogue,
    settings: config,
    log,
    ...(tuning.pollMs !== undefined ? { pollMs: tuning.pollMs } : {}),
    ...(tuning.maxPollMs !== undefined ? { maxPollMs: tuning.maxPollMs } : {}),
  });
  const changes = new DynamoStreamSource(clients.dynamodb, clients.streams, config.tenantsTable, {
    log,
    ...(config.tenantsStreamArn !== undefined ? { streamArn: config.tenantsStreamArn } : {}),
    ...(tuning.streamPollMs !== undefined ? { pollIntervalMs: tuning.streamPollMs } : {}),
  });
  const hints =
    config.ecsEventsQueueUrl === undefined
      ? undefined
      : new EcsEventQueue(clients.sqs, config.ecsEventsQueueUrl, {
          names: config,
          log: log.child({ component: "ecs-events" }),
          counts: metrics.hintCounts,
        });
  if (hints === undefined)
    log.info({ resyncSeconds: config.resyncSeconds }, "ECS_EVENTS_QUEUE_URL is not set: ECS drift is seen at each resync only");
  const manager = new Manager({
    store,
    changes,
    ecs,
    reconciler,
    lease,
    shards,
    log,
    concurrency: config.concurrency,
    resyncMs: config.resyncSeconds * 1000,
    sharedClusters: [config.poolCluster, config.advancedCluster],
    // Each controller's resync surveys its own shards' services (docs/adr/0018).
    serviceOwner: serviceOwner(config.namePrefix),
    // And the listeners' rules of its tenants, in the same pass.
    routeSurvey: (covers) => parts.routes.survey(covers),
    onResult: (_key, result, ms) => metrics.observeReconcile(result, ms),
    queueMetrics: metrics,
    leaderTasks: [rollouts],
    ...(hints !== undefined ? { hints } : {}),
    ...(tuning.shutdownTimeoutMs !== undefined ? { shutdownTimeoutMs: tuning.shutdownTimeoutMs } : {}),
  });
  manager.onRoleChange((role) => metrics.setLeader(role === "leader"));
  let stopping: Promise<void> | undefined;
  // A graceful stop releases the lease too; only a loss while leading counts.
  lease.onLost(() => {
    if (stopping === undefined) metrics.leaseLost();
  });
  shards.onAcquired(() => metrics.shardAcquired());
  shards.onLost((_shard, reason) => {
    if (stopping === undefined && reason !== "stopped") metrics.shardLost();
  });
  /** Gauges read from their sources, before each scrape and each EMF line. */
  const refresh = () => {
    metrics.setQueueDepth(manager.queueDepth);
    metrics.setTenantsByPhase(reconciler.phaseCounts());
    metrics.setPhaseTimes(reconciler.phaseTimes(), Date.now(), config.stuckAfterSeconds * 1000);
    metrics.setStreamLag(changes.lagSeconds());
    metrics.setResyncAge(manager.resyncAgeSeconds());
    metrics.setShards(config.shardCount, shards.ownedShards(), manager.syncedShards());
  };
  const emf = config.emfMetrics
    ? new EmfEmitter({
        operator: config.namePrefix,
        intervalMs: config.emfIntervalSeconds * 1000,
        sample: () => {
          refresh();
          return metrics.takeEmfValues();
        },
        onError: (err) => log.warn({ err: describeError(err) }, "could not write the EMF metrics line"),
      })
    : undefined;

  const http =
    tuning.http === false
      ? undefined
      : await startHttpServer(
          config.httpPort,
          { healthy: () => manager.role !== "stopped", ready: () => manager.ready },
          {
            "/metrics": {
              contentType: metrics.contentType,
              render: () => {
                refresh();
                return metrics.render();
              },
            },
          },
        );
  await manager.start();
  emf?.start();
  log.info(
    {
      role: manager.role,
      holder: lease.holder,
      shards: shards.ownedShards(),
      httpPort: http?.port,
      table: config.tenantsTable,
      bus: config.eventBusName,
    },
    "controller started",
  );

  return {
    manager,
    reconciler,
    rollouts,
    lease,
    shards,
    calls,
    metrics,
    clients,
    httpPort: http?.port,
    stop: () =>
      (stopping ??= (async () => {
        await manager.stop();
        // The last line carries what happened since the one before.
        emf?.stop();
        await http?.close();
        clients.destroy();
        log.info("controller stopped");
      })()),
  };
}
