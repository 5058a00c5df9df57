import type { ObservedService, ObservedTaskDefinition } from "../tiers/model.js";

/**
 * In-process memory that saves ECS reads (task definitions) and hides ECS's
 * eventual consistency (services just created). Everything here is a hint a
 * fresh process can do without: losing it costs calls, never correctness.
 */
export class TaskDefinitionCache {
  /** family -> latest ACTIVE revision, or null when the family has none. */
  readonly #latest = new Map<string, ObservedTaskDefinition | null>();
  /** arn -> content-hash tag (null: the revision has none). A revision's content never changes. */
  readonly #hashByArn = new Map<string, string | null>();
  readonly #maxArns: number;

  constructor(maxArns = 20_000) {
    this.#maxArns = maxArns;
  }

  /** undefined: unknown, ask ECS; null: known to have no ACTIVE revision. */
  latest(family: string): ObservedTaskDefinition | null | undefined {
    return this.#latest.get(family);
  }

  setLatest(family: string, td: ObservedTaskDefinition | null): void {
    this.#latest.set(family, td);
    if (td !== null) this.setHash(td.arn, td.contentHash);
  }

  forgetFamily(family: string): void {
    this.#latest.delete(family);
  }

  /** undefined: unknown; null: the revision carries no content-hash tag. */
  hash(arn: string): string | null | undefined {
    return this.#hashByArn.get(arn);
  }

  setHash(arn: string, hash: string | undefined): void {
    // Oldest first out: a Map iterates in insertion order.
    if (this.#hashByArn.size >= this.#maxArns && !this.#hashByArn.has(arn)) {
      const oldest = this.#hashByArn.keys().next().value;
      if (oldest !== undefined) this.#hashByArn.delete(oldest);
    }
    this.#hashByArn.set(arn, hash ?? null);
  }

  clear(): void {
    this.#latest.clear();
    this.#hashByArn.clear();
  }
}

/** Services this process created recently, remembered while DescribeServices may still say MISSING. */
export class RecentCreates {
  readonly #created = new Map<string, { readonly at: number; readonly service: ObservedService; readonly createdAt: number | undefined }>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** `createdAt` is ECS's creation time of the service, when the create response gave one. */
  remember(service: ObservedService, createdAt?: number): void {
    this.#prune();
    const k = key(service.cluster, service.name);
    // Re-inserted, not overwritten: the map stays in the order of `at`, which #prune relies on.
    this.#created.delete(k);
    this.#created.set(k, { at: this.#now(), service, createdAt });
  }

  /** Services remembered now (for tests and benchmarks: the memory bound). */
  get size(): number {
    this.#prune();
    return this.#created.size;
  }

  /**
   * Whether an INACTIVE service ECS shows under this name is the predecessor
   * of the one we created (so ours is still appearing), rather than ours,
   * deleted since by someone else.
   */
  isPredecessor(
    cluster: string,
    name: string,
    inactive: { readonly createdAt: number | undefined; readonly deploymentIds: readonly string[] },
  ): boolean {
    this.#prune();
    const entry = this.#created.get(key(cluster, name));
    if (entry === undefined) return false;
    if (entry.createdAt !== undefined && inactive.createdAt !== undefined) return inactive.createdAt < entry.createdAt;
    // Without creation times, a deployment of ours on the dead service says it is ours.
    const ours = new Set(entry.service.deployments.map((d) => d.id));
    return !inactive.deploymentIds.some((id) => ours.has(id));
  }

  /** The created service if it was created less than ttl ago. */
  get(cluster: string, name: string): ObservedService | undefined {
    this.#prune();
    return this.#created.get(key(cluster, name))?.service;
  }

  update(cluster: string, name: string, change: (s: ObservedService) => ObservedService): void {
    const entry = this.#created.get(key(cluster, name));
    if (entry !== undefined) this.#created.set(key(cluster, name), { ...entry, service: change(entry.service) });
  }

  forget(cluster: string, name: string): void {
    this.#created.delete(key(cluster, name));
  }

  clear(): void {
    this.#created.clear();
  }

  /**
   * Drops what is older than the ttl. Entries are in the order they were
   * remembered, so only the expired head is visited: a burst of creates
   * costs each create O(1), and a fleet onboarded at once is let go 30 s
   * later at the next read, not kept until the next create.
   */
  #prune(): void {
    const now = this.#now();
    for (const [k, e] of this.#created) {
      if (now - e.at <= this.#ttlMs) return;
      this.#created.delete(k);
    }
  }
}

function key(cluster: string, name: string): string {
  return `${cluster}/${name}`;
}
