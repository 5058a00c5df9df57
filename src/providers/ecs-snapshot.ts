import { SurveyGeneration } from "./survey-generation.js";
import { TENANT_ID_KEY, type Footprint, type ObservedCluster, type ObservedService } from "../tiers/model.js";

/**
 * What one resync's batched ECS reads saw (docs/adr/0018-batched-resync-reads.md),
 * kept so the reconciles that resync queues observe without reading ECS
 * themselves. Every answer is a hint with an age:
 * - it is given only while the reads are younger than `maxAgeMs`;
 * - each key (Footprint.owner) gets it once: a requeue while converging reads live;
 * - a write by this process to a service or cluster, or a hint that the key
 *   changed (an ECS event), withdraws what it covered;
 * - it never answers for a cluster whose services were not listed, or when
 *   a name is absent (or INACTIVE) that the caller says a listing cannot
 *   settle (a service this process created recently may not be listed yet).
 * Holds only mapped observations, never SDK objects, and one survey at a time.
 */
export interface SurveyReads {
  /** When the reads began (epoch ms): the age of everything here counts from then. */
  readonly at: number;
  /** Every cluster ListClusters named that is not INACTIVE, so a name absent here does not exist. */
  readonly clusters: readonly ObservedCluster[];
  /** Clusters whose services were all listed: a service absent here is absent from them. */
  readonly listedClusters: readonly string[];
  /** The services of the listed clusters, as DescribeServices answered (hash left undefined). */
  readonly services: readonly ObservedService[];
  /**
   * The owners whose services were all read, when the survey was scoped
   * (SurveyScope): no answer for any other, whose services were skipped.
   * Absent: every owner's.
   */
  readonly covers?: (owner: string) => boolean;
}

/** What the snapshot knows at a footprint's locations. */
export interface SnapshotView {
  readonly clusters: readonly ObservedCluster[];
  /** Services found at the footprint's locations; names not here were not listed. */
  readonly services: readonly ObservedService[];
}

export class ObservationSnapshot {
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  /** Which survey may prime, and whether writes and hints are kept (from a survey's begin on). */
  readonly #generation = new SurveyGeneration();
  /** Since a survey primed: answers are given. */
  #primed = false;
  #at = Number.NEGATIVE_INFINITY;
  #covers: ((owner: string) => boolean) | undefined;
  #clusters = new Map<string, ObservedCluster>();
  #listed = new Set<string>();
  /** cluster -> service name -> observation. */
  #services = new Map<string, Map<string, ObservedService>>();
  /** Keys that had their answer, or whose hint was withdrawn, since the survey. */
  #spent = new Set<string>();
  /** Clusters and services (cluster/name) this process wrote to since the survey. */
  #written = new Set<string>();

  constructor(maxAgeMs: number, now: () => number) {
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  /**
   * A survey starts reading: what an earlier one left goes, and from now on
   * writes and hints are kept, so one that lands while the survey reads
   * still withdraws what the survey saw before it.
   */
  begin(): number {
    this.clear();
    return this.#generation.open();
  }

  /**
   * The survey's reads, under the token its begin() gave. Without that
   * begin, or after another survey's, the writes made while it read are not
   * all known: nothing is kept.
   */
  prime(token: number, reads: SurveyReads): void {
    if (!this.#generation.accepts(token)) return;
    this.#primed = true;
    this.#at = reads.at;
    this.#covers = reads.covers;
    for (const c of reads.clusters) this.#clusters.set(c.name, c);
    this.#listed = new Set(reads.listedClusters.filter((name) => this.#clusters.has(name)));
    for (const s of reads.services) {
      if (!this.#listed.has(s.cluster)) continue;
      let byName = this.#services.get(s.cluster);
      if (byName === undefined) this.#services.set(s.cluster, (byName = new Map<string, ObservedService>()));
      byName.set(s.name, s);
    }
  }

  /** Services held now (for tests and benchmarks: the memory bound). */
  get size(): number {
    let n = 0;
    for (const byName of this.#services.values()) n += byName.size;
    return n;
  }

  /**
   * The snapshot's answer for a footprint, once per owner; undefined when it
   * has none to give (expired, spent, written since, not listed, or a name
   * absent or INACTIVE that `unsure` says a listing cannot settle), and the
   * caller reads ECS.
   */
  take(footprint: Footprint, unsure: (cluster: string, name: string) => boolean): SnapshotView | undefined {
    const owner = footprint.owner;
    if (!this.#primed || owner === undefined || this.#spent.has(owner)) return undefined;
    // Another controller's share: its services were never described here.
    if (this.#covers !== undefined && !this.#covers(owner)) return undefined;
    if (this.#now() - this.#at > this.#maxAgeMs) {
      // Expired: nothing here will be given again, so the memory goes now.
      this.clear();
      return undefined;
    }
    const clusterNames = new Set([...footprint.ownedClusters, ...footprint.serviceLocations.map((l) => l.cluster)]);
    const clusters: ObservedCluster[] = [];
    for (const name of clusterNames) {
      if (this.#written.has(name)) return undefined;
      const c = this.#clusters.get(name);
      if (c !== undefined) clusters.push(c);
    }
    const services: ObservedService[] = [];
    for (const loc of footprint.serviceLocations) {
      // A cluster that does not exist holds no services: as observe reads it.
      if (!this.#clusters.has(loc.cluster)) continue;
      if (!this.#listed.has(loc.cluster)) return undefined;
      const byName = this.#services.get(loc.cluster);
      for (const name of new Set(loc.serviceNames)) {
        if (this.#written.has(serviceKey(loc.cluster, name))) return undefined;
        const s = byName?.get(name);
        // Only absence (or a dead incarnation) can be a listing lagging behind a create; a live service listed is settled.
        if ((s === undefined || s.status === "INACTIVE") && unsure(loc.cluster, name)) return undefined;
        if (s !== undefined) services.push(s);
      }
    }
    this.#spent.add(owner);
    // Given once, never again (the owner is spent, and no other owner's footprint names them): the memory goes now.
    for (const s of services) this.#services.get(s.cluster)?.delete(s.name);
    return { clusters, services };
  }

  /** A hint that the key changed (an ECS event) or a person's "look again": its next observe reads ECS. */
  forget(owner: string): void {
    if (!this.#generation.collecting) return;
    this.#spent.add(owner);
    // Its services and clusters too, by tag: another footprint covering them must not be answered either.
    for (const [cluster, byName] of this.#services)
      for (const [name, s] of byName) if (s.tags[TENANT_ID_KEY] === owner) this.#written.add(serviceKey(cluster, name));
    for (const c of this.#clusters.values()) if (c.tags[TENANT_ID_KEY] === owner) this.#written.add(c.name);
  }

  /** This process wrote to the service (created, updated, deleted). */
  wroteService(cluster: string, name: string): void {
    if (this.#generation.collecting) this.#written.add(serviceKey(cluster, name));
  }

  /** This process created or deleted the cluster. */
  wroteCluster(name: string): void {
    if (this.#generation.collecting) this.#written.add(name);
  }

  /** The survey under `token` failed: unless another began since, nothing is kept. */
  abandon(token: number): void {
    if (this.#generation.isLatest(token)) this.clear();
  }

  clear(): void {
    this.#generation.close();
    this.#primed = false;
    this.#at = Number.NEGATIVE_INFINITY;
    this.#covers = undefined;
    this.#clusters = new Map();
    this.#listed = new Set();
    this.#services = new Map();
    this.#spent = new Set();
    this.#written = new Set();
  }
}

function serviceKey(cluster: string, name: string): string {
  return `${cluster}/${name}`;
}
