import { InMemoryShardStore, ShardLeases, type ShardStore } from "../src/reconciler/shard-leases.js";
import { KeyOwnership, serviceOwner } from "../src/operator/key-ownership.js";
import type { ECSClient } from "@aws-sdk/client-ecs";
import { pino, type Logger } from "pino";
import { defaultCatalogue } from "../src/apps/catalogue.js";
import { EcsThrottle } from "../src/localcloud/throttling.js";
import { Manager } from "../src/operator/manager.js";
import { TenantReconciler } from "../src/operator/tenant-reconciler.js";
import { TenantRoutes } from "../src/operator/tenant-routes.js";
import { EcsProvider } from "../src/providers/ecs.js";
import { InMemoryLeaseStore, LeaderLease, type LeaseStore } from "../src/reconciler/lease.js";
import type {
  CaseClaimPort,
  EventPublisher,
  IdentityPort,
  InfraPort,
  NamespacePort,
  RemovalLog,
  RoutePort,
  TenantChangeSource,
  TenantDataPort,
  TenantStore,
} from "../src/ports.js";
import type { Priorities } from "../src/operator/tenant-routes.js";
import type { ReconcileResult } from "../src/reconciler/result.js";
import { poolTables } from "../src/tiers/data-home.js";
import type { TierSettings } from "../src/tiers/desired.js";
import { Busy } from "./fakes/busy.js";
import { FakeEcsClient } from "./fakes/fake-ecs.js";
import {
  MemoryChangeSource,
  MemoryClaims,
  MemoryData,
  MemoryEvents,
  MemoryIdentity,
  MemoryInfra,
  MemoryNamespaces,
  MemoryPriorities,
  MemoryRemovals,
  MemoryRoutes,
  MemoryTenantStore,
} from "./fakes/memory-ports.js";

/**
 * The scale benchmark's world: one in-memory cloud (bench/fakes) and N
 * controllers composed on it exactly as src/operator/run-controller.ts
 * composes one on AWS (real Manager, TenantReconciler, WorkQueue,
 * Controller, LeaderLease, ShardLeases, KeyOwnership and EcsProvider),
 * minus HTTP, metrics, ECS event hints and the fleet rollout, which a
 * converged fleet does not exercise.
 */

export const SETTINGS: TierSettings = {
  namePrefix: "saas",
  poolCluster: "saas-pool",
  advancedCluster: "saas-advanced",
  subnets: ["subnet-0a", "subnet-0b"],
  securityGroups: ["sg-0a"],
};
export const LISTENER_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas/0123456789abcdef/fedcba9876543210";
/** The production default (SHARD_COUNT). */
const SHARD_COUNT = 32;
const REGION = "us-east-1";
const ACCOUNT = "123456789012";

export interface ScaleCloud {
  readonly ecs: FakeEcsClient;
  readonly store: MemoryTenantStore;
  readonly changes: MemoryChangeSource;
  readonly infra: MemoryInfra;
  readonly data: MemoryData;
  readonly routes: MemoryRoutes;
  readonly priorities: MemoryPriorities;
  readonly claims: MemoryClaims;
  readonly removals: MemoryRemovals;
  readonly namespaces: MemoryNamespaces;
  readonly identity: MemoryIdentity;
  readonly events: MemoryEvents;
  readonly leases: InMemoryLeaseStore;
  /** The shard leases every controller shares (docs/adr/0016). */
  readonly shardLeases: InMemoryShardStore;
  /** Time spent in the fakes' own bodies, all of them together. */
  readonly busy: Busy;
}

export interface CloudOptions {
  /** ECS's documented buckets on every call (src/localcloud/throttling.ts). @default false */
  readonly throttle?: boolean;
}

export function createCloud(options: CloudOptions = {}): ScaleCloud {
  const busy = new Busy();
  return {
    ecs: new FakeEcsClient({
      region: REGION,
      accountId: ACCOUNT,
      sharedClusters: [SETTINGS.poolCluster, SETTINGS.advancedCluster],
      busy,
      ...(options.throttle === true ? { throttle: new EcsThrottle() } : {}),
    }),
    store: new MemoryTenantStore(busy),
    changes: new MemoryChangeSource(),
    infra: new MemoryInfra(busy),
    data: new MemoryData(Object.values(poolTables(SETTINGS.namePrefix))),
    routes: new MemoryRoutes(busy),
    priorities: new MemoryPriorities(),
    claims: new MemoryClaims(busy),
    removals: new MemoryRemovals(),
    namespaces: new MemoryNamespaces(busy),
    identity: new MemoryIdentity(busy),
    events: new MemoryEvents(),
    leases: new InMemoryLeaseStore(),
    shardLeases: new InMemoryShardStore(),
    busy,
  };
}

/**
 * What composing a controller takes from the world: the ScaleCloud itself
 * in process, or proxies of it in a controller process of its own
 * (bench/remote-ports.ts, `--controller-process`).
 */
export interface ControllerPorts {
  readonly ecs: { asClient(): ECSClient };
  readonly store: TenantStore;
  readonly changes: { follower(): TenantChangeSource };
  readonly infra: InfraPort;
  readonly data: TenantDataPort;
  readonly routes: RoutePort;
  readonly priorities: Priorities;
  readonly claims: CaseClaimPort;
  readonly removals: RemovalLog;
  readonly namespaces: NamespacePort;
  readonly identity: IdentityPort;
  readonly events: EventPublisher;
  readonly leases: LeaseStore;
  readonly shardLeases: ShardStore;
}

/** The ECS requests one controller sent, by action: the caller's count, to check against what the fake served. */
export class SentCounter {
  readonly sent = new Map<string, number>();

  wrap(client: ECSClient): ECSClient {
    const send = async (command: object): Promise<unknown> => {
      const action = command.constructor.name.replace(/Command$/, "");
      this.sent.set(action, (this.sent.get(action) ?? 0) + 1);
      return (client as unknown as { send(c: object): Promise<unknown> }).send(command);
    };
    return { send } as unknown as ECSClient;
  }
}

export interface ScaleController {
  readonly holder: string;
  readonly manager: Manager;
  readonly reconciler: TenantReconciler;
  /** The "controller" lease: the pool key (fleet-wide work). */
  readonly lease: LeaderLease;
  /** The shard leases: the tenants this controller reconciles. */
  readonly shards: ShardLeases;
  readonly ecs: EcsProvider;
  readonly sent: SentCounter;
  /** Reconciles this controller finished, by result kind. */
  readonly results: Map<ReconcileResult["kind"], number>;
  /** Times this controller lost its controller lease (a stop counts too) or a shard lease (a stop does not). */
  readonly leaseLosses: { count: number };
}

export interface ControllerTuning {
  /** Workers per controller (CONCURRENCY). @default 8, the config default */
  readonly concurrency?: number;
  /** LEASE_SECONDS. @default 15 */
  readonly leaseSeconds?: number;
  /** First requeue while ECS converges. @default 1000, the production default */
  readonly pollMs?: number;
  /** pino level; output goes to /dev/null, so logging costs what it costs in production. @default "info" */
  readonly logLevel?: string;
  /** Called after every reconcile of any controller. */
  readonly onResult?: (holder: string, key: string, result: ReconcileResult) => void;
}

/**
 * THE composition of the benchmark's controllers, as run-controller's: each
 * reconciles the tenants of the shards it holds (32 shard leases balanced
 * over the live controllers, every write fenced by its shard's lease), and
 * the holder of the "controller" lease also reconciles the pool key.
 */
export function composeControllers(cloud: ControllerPorts, count: number, tuning: ControllerTuning = {}): ScaleController[] {
  const log: Logger = pino({ level: tuning.logLevel ?? "info" }, pino.destination({ dest: "/dev/null", sync: true }));
  return Array.from({ length: count }, (_, i) => composeController(cloud, `controller-${i + 1}`, tuning, log));
}

function composeController(cloud: ControllerPorts, holder: string, tuning: ControllerTuning, baseLog: Logger): ScaleController {
  const log = baseLog.child({ holder });
  const durationMs = (tuning.leaseSeconds ?? 15) * 1000;
  const lease = new LeaderLease({ store: cloud.leases, holder, durationMs, log });
  // As run-controller: the fleet's tenants are shared out by shard leases; the controller lease keeps the pool key.
  const shards = new ShardLeases({ store: cloud.shardLeases, holder, count: SHARD_COUNT, durationMs, log });
  const ownership = new KeyOwnership(lease, shards);
  const sent = new SentCounter();
  // As run-controller: a survey answers observes for half a resync interval (the benchmark's passes are manual).
  const ecs = new EcsProvider(sent.wrap(cloud.ecs.asClient()), { region: REGION, snapshotMaxAgeMs: 12 * 3600 * 1000 });
  // As run-controller: another leader may have registered revisions meanwhile.
  lease.onAcquired(() => ecs.invalidateCaches());
  const leaseLosses = { count: 0 };
  lease.onLost(() => (leaseLosses.count += 1));
  shards.onLost((_shard, reason) => {
    if (reason !== "stopped") leaseLosses.count += 1;
  });
  const reconciler = new TenantReconciler({
    store: cloud.store,
    ecs,
    infra: cloud.infra,
    data: cloud.data,
    routes: new TenantRoutes(cloud.routes, cloud.priorities, LISTENER_ARN),
    claims: cloud.claims,
    removals: cloud.removals,
    namespaces: cloud.namespaces,
    identity: cloud.identity,
    account: { region: REGION, accountId: ACCOUNT },
    backupBucket: "saas-backups",
    events: cloud.events,
    fence: lease,
    fenceFor: ownership.fenceFor,
    catalogue: defaultCatalogue,
    settings: SETTINGS,
    log,
    ...(tuning.pollMs !== undefined ? { pollMs: tuning.pollMs } : {}),
  });
  const results = new Map<ReconcileResult["kind"], number>();
  const manager = new Manager({
    store: cloud.store,
    changes: cloud.changes.follower(),
    ecs,
    reconciler,
    lease,
    shards,
    log,
    concurrency: tuning.concurrency ?? 8,
    // Passes are started by the benchmark (resyncNow), never by the timer.
    resyncMs: 24 * 3600 * 1000,
    sharedClusters: [SETTINGS.poolCluster, SETTINGS.advancedCluster],
    // As run-controller: each controller's survey reads its own shards' services.
    serviceOwner: serviceOwner(SETTINGS.namePrefix),
    onResult: (key, result) => {
      results.set(result.kind, (results.get(result.kind) ?? 0) + 1);
      tuning.onResult?.(holder, key, result);
    },
  });
  return { holder, manager, reconciler, lease, shards, ecs, sent, results, leaseLosses };
}
