/**
 * ECS's request throttling, as token buckets per API category and account:
 * a bucket holds at most `burst` tokens, refills at `rate` tokens a second,
 * and each call takes one. Figures from "Request throttling for the Amazon
 * ECS API" (API reference). Buckets run on real time, not simulated time:
 * they measure how fast a controller really spends calls.
 */
export interface BucketSpec {
  readonly burst: number;
  readonly rate: number;
}

const CATEGORIES: Readonly<Record<string, { readonly spec: BucketSpec; readonly actions: readonly string[] }>> = {
  clusterModify: {
    spec: { burst: 20, rate: 1 },
    actions: ["CreateCluster", "DeleteCluster", "PutClusterCapacityProviders", "UpdateCluster", "UpdateClusterSettings"],
  },
  clusterRead: { spec: { burst: 50, rate: 20 }, actions: ["DescribeClusters", "ListClusters"] },
  taskDefinitionModify: { spec: { burst: 20, rate: 1 }, actions: ["DeregisterTaskDefinition", "RegisterTaskDefinition"] },
  taskDefinitionRead: {
    spec: { burst: 50, rate: 20 },
    actions: ["DescribeTaskDefinition", "ListTaskDefinitions", "ListTaskDefinitionFamilies"],
  },
  taskDefinitionDelete: { spec: { burst: 5, rate: 1 }, actions: ["DeleteTaskDefinitions"] },
  capacityProviderModify: {
    spec: { burst: 10, rate: 1 },
    actions: ["CreateCapacityProvider", "DeleteCapacityProvider", "UpdateCapacityProvider"],
  },
  capacityProviderRead: { spec: { burst: 50, rate: 20 }, actions: ["DescribeCapacityProviders"] },
  tagModify: { spec: { burst: 20, rate: 10 }, actions: ["TagResource", "UntagResource"] },
  tagRead: { spec: { burst: 50, rate: 20 }, actions: ["ListTagsForResource"] },
  settingModify: { spec: { burst: 10, rate: 1 }, actions: ["DeleteAccountSetting", "PutAccountSetting", "PutAccountSettingDefault"] },
  settingRead: { spec: { burst: 50, rate: 20 }, actions: ["ListAccountSettings"] },
  clusterResourceModify: {
    spec: { burst: 100, rate: 40 },
    actions: [
      "DeleteAttributes",
      "DeregisterContainerInstance",
      "ExecuteCommand",
      "PutAttributes",
      "RunTask",
      "StartTask",
      "StopTask",
      "UpdateContainerAgent",
      "UpdateContainerInstancesState",
    ],
  },
  clusterResourceRead: {
    spec: { burst: 100, rate: 20 },
    actions: ["DescribeContainerInstances", "DescribeTasks", "ListAttributes", "ListContainerInstances", "ListTasks"],
  },
  serviceModify: { spec: { burst: 50, rate: 5 }, actions: ["CreateService", "DeleteService", "UpdateService"] },
  serviceRead: { spec: { burst: 100, rate: 20 }, actions: ["DescribeServices", "ListServices"] },
  serviceDeployment: { spec: { burst: 50, rate: 20 }, actions: ["DescribeServiceDeployments", "ListServiceDeployments"] },
  listServicesByNamespace: { spec: { burst: 10, rate: 1 }, actions: ["ListServicesByNamespace"] },
};

const CATEGORY_OF: ReadonlyMap<string, string> = new Map(
  Object.entries(CATEGORIES).flatMap(([category, { actions }]) => actions.map((a) => [a, category] as const)),
);

/** The documented bucket of an ECS action; undefined for actions ECS does not list. */
export function bucketFor(action: string): { readonly category: string; readonly spec: BucketSpec } | undefined {
  const category = CATEGORY_OF.get(action);
  const entry = category === undefined ? undefined : CATEGORIES[category];
  return category === undefined || entry === undefined ? undefined : { category, spec: entry.spec };
}

export class EcsThrottle {
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Takes a token for the action; false means the call is throttled. Unlisted actions are never throttled. */
  take(action: string): boolean {
    const bucket = bucketFor(action);
    if (bucket === undefined) return true;
    const now = this.#now();
    const current = this.#buckets.get(bucket.category) ?? { tokens: bucket.spec.burst, at: now };
    const tokens = Math.min(bucket.spec.burst, current.tokens + ((now - current.at) / 1000) * bucket.spec.rate);
    if (tokens < 1) {
      this.#buckets.set(bucket.category, { tokens, at: now });
      return false;
    }
    this.#buckets.set(bucket.category, { tokens: tokens - 1, at: now });
    return true;
  }

  /** Refills every bucket, as after a long pause. */
  reset(): void {
    this.#buckets.clear();
  }
}
