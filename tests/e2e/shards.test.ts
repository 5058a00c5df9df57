import { DescribeTableCommand, GetItemCommand, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record,
} from "@aws-sdk/client-dynamodb-streams";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";
import { localTarget } from "../../src/localcloud/index.js";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { shardOf } from "../../src/reconciler/shards.js";
import { hashSpec } from "../../src/tenants/record.js";
import { eventually } from "../support/event-sink.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { freePort } from "../support/moto.js";
import { parseExposition, sample } from "../support/prom-text.js";
import { spawnCli, type CliProcess } from "../support/spawn.js";

/**
 * Three `tenantctl controller` processes share the shards (ADR 0016). One is
 * SIGKILLed: its shards move to the others within its lease (plus a round),
 * every tenant still converges, including records edited just before and
 * just after the kill, and the tenants table's stream shows that no tenant
 * was ever written by two owners: per tenant, the fencing tokens of
 * successive status writes never go back, and one term has one holder.
 */
const LEASE_SECONDS = 6;
const SHARDS = 12;
let cloud: TestCloud;
const procs: CliProcess[] = [];

beforeAll(async () => {
  cloud = await startTestCloud({ speed: 200 });
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  await cloud?.stop();
});

async function put(record: Record<string, unknown>) {
  await cloud.clients.dynamodb.send(new PutItemCommand({ TableName: cloud.config.tenantsTable, Item: marshall(record) }));
}

async function tenant(tenantId: string): Promise<Record<string, unknown> | undefined> {
  const res = await cloud.clients.dynamodb.send(
    new GetItemCommand({ TableName: cloud.config.tenantsTable, Key: marshall({ tenantId }), ConsistentRead: true }),
  );
  return res.Item ? unmarshall(res.Item) : undefined;
}

/** shard -> { holder, expiresAt, token } as the operator table has it now. */
async function shardLeases(): Promise<Map<number, { holder?: string; expiresAt: number; token: number }>> {
  const res = await cloud.clients.dynamodb.send(new ScanCommand({ TableName: cloud.config.leaseTable, ConsistentRead: true }));
  const out = new Map<number, { holder?: string; expiresAt: number; token: number }>();
  for (const raw of res.Items ?? []) {
    const item = unmarshall(raw) as { pk: string; holder?: string; expiresAt?: number; token?: number };
    const m = /^lease#shard-(\d+)$/.exec(item.pk);
    if (m)
      out.set(Number(m[1]), { ...(item.holder ? { holder: item.holder } : {}), expiresAt: item.expiresAt ?? 0, token: item.token ?? 0 });
  }
  return out;
}

async function readyz(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
  } catch {
    return 0;
  }
}

async function owned(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return sample(parseExposition(text), "tenant_operator_shards_owned", "tenant_operator_shards_owned") ?? -1;
}

/** Every status image on the tenants table's stream, in stream order per shard of the stream (one tenant stays in one). */
async function statusWrites(): Promise<Map<string, { lease: string; holder: string; token: number }[]>> {
  const table = await cloud.clients.dynamodb.send(new DescribeTableCommand({ TableName: cloud.config.tenantsTable }));
  const streamArn = table.Table?.LatestStreamArn;
  if (streamArn === undefined) throw new Error("the tenants table has no stream");
  const streams = awsClient(DynamoDBStreamsClient, localTarget(cloud.endpoint), RETRIES.standard);
  const stream = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const byTenant = new Map<string, { lease: string; holder: string; token: number }[]>();
  for (const shard of stream.StreamDescription?.Shards ?? []) {
    let iterator = (
      await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }))
    ).ShardIterator;
    for (let page = 0; iterator !== undefined && page < 1000; page++) {
      const out = await streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      const records: _Record[] = out.Records ?? [];
      for (const r of records) {
        const image = r.dynamodb?.NewImage;
        if (image === undefined) continue;
        const item = unmarshall(image) as {
          tenantId: string;
          status?: { writtenBy?: { lease: string; holder: string; token: number } };
        };
        const by = item.status?.writtenBy;
        if (by === undefined) continue;
        const list = byTenant.get(item.tenantId) ?? [];
        // A spec edit carries the status written before it: only count a status when it changed.
        const last = list.at(-1);
        if (!(last && last.lease === by.lease && last.holder === by.holder && last.token === by.token)) list.push(by);
        byTenant.set(item.tenantId, list);
      }
      if (records.length === 0) break;
      iterator = out.NextShardIterator;
    }
  }
  return byTenant;
}

it("three controllers share the shards; one SIGKILLed: its shards move within the lease, nothing is lost, no tenant has two owners", async () => {
  const env = {
    ...cloud.env,
    LEASE_SECONDS: String(LEASE_SECONDS),
    SHARD_COUNT: String(SHARDS),
    LOG_LEVEL: process.env["CHILD_LOG_LEVEL"] ?? "info",
  };
  const names = ["ctl-a", "ctl-b", "ctl-c"];
  const ctls = await Promise.all(
    names.map(async (name) => {
      const port = await freePort();
      const proc = spawnCli(["controller"], { ...env, HOLDER_ID: name, HTTP_PORT: String(port) });
      procs.push(proc);
      return { name, port, proc };
    }),
  );
  await Promise.all(ctls.map((c) => c.proc.waitForLine((l) => l["msg"] === "controller started", 60_000)));

  // They balance: each owns some shards (target ceil(12/3) = 4; at most one apart), all 12 owned, all ready.
  await eventually(
    async () => {
      const leases = await shardLeases();
      const now = Date.now();
      const loads = names.map((n) => [...leases.values()].filter((l) => l.holder === n && l.expiresAt > now).length);
      return loads.every((n) => n >= 3) && loads.reduce((a, b) => a + b, 0) === SHARDS ? loads : undefined;
    },
    "the shards spread over the three controllers",
    90_000,
    500,
  );
  await eventually(
    async () => ((await Promise.all(ctls.map((c) => readyz(c.port)))).every((s) => s === 200) ? true : undefined),
    "all ready",
    60_000,
  );
  // A stolen shard counts as owned (and is written) only once its previous holder's lease would have run out.
  await eventually(
    async () => ((await Promise.all(ctls.map((c) => owned(c.port)))).every((n) => n >= 3) ? true : undefined),
    "each controller's shards_owned gauge",
    30_000,
    500,
  );

  // 12 tenants, mostly basic (fast), two silo ones.
  const ids = Array.from({ length: 12 }, (_, i) => `shard-t${i}`);
  const tierOf = (i: number) => (i === 3 ? "advanced" : i === 7 ? "premium" : "basic");
  await Promise.all(ids.map((id, i) => put({ tenantId: id, tier: tierOf(i), tenantName: `Tenant ${i}` })));
  const readyAt = async (id: string, specHash?: string) => {
    const item = await tenant(id);
    const status = item?.["status"] as { phase?: string; observedSpecHash?: string } | undefined;
    return status?.phase === "Ready" && (specHash === undefined || status.observedSpecHash === specHash) ? true : undefined;
  };
  await Promise.all(ids.map((id) => eventually(() => readyAt(id), `${id} Ready`, 150_000, 500)));

  // The victim: a controller that owns a shard with basic tenants in it.
  const before = await shardLeases();
  const basic = ids.filter((_, i) => tierOf(i) === "basic");
  const victimTenant = basic.find((id) => before.get(shardOf(id, SHARDS))?.holder !== undefined);
  expect(victimTenant).toBeDefined();
  const victim = ctls.find((c) => c.name === before.get(shardOf(victimTenant!, SHARDS))?.holder)!;
  const survivors = ctls.filter((c) => c !== victim);
  const victimShards = [...before].filter(([, l]) => l.holder === victim.name).map(([s]) => s);
  const victimTenants = basic.filter((id) => victimShards.includes(shardOf(id, SHARDS)));
  expect(victimTenants.length).toBeGreaterThan(0);

  // An edit just before the kill and one just after, both of the victim's tenants.
  const edited = victimTenants.slice(0, 2);
  const editBefore = { tenantId: edited[0]!, tier: "basic", tenantName: "Edited before the kill" };
  await put(editBefore);
  const lastExpiry = Math.max(...victimShards.map((s) => before.get(s)?.expiresAt ?? 0));
  const killedAt = Date.now();
  victim.proc.child.kill("SIGKILL");
  const editAfter = { tenantId: edited[1] ?? edited[0]!, tier: "basic", tenantName: "Edited after the kill" };
  await put(editAfter);

  // Its shards are taken over: by a survivor, in a new term.
  const takenAt = await eventually(
    async () => {
      const leases = await shardLeases();
      const moved = victimShards.every((s) => {
        const l = leases.get(s);
        return l?.holder !== undefined && l.holder !== victim.name && l.token > (before.get(s)?.token ?? 0);
      });
      return moved ? Date.now() : undefined;
    },
    "the killed controller's shards taken over",
    60_000,
    200,
  );
  // Within the lease (+ a renewal round), counted from the kill; generous slack for a loaded machine.
  const bound = LEASE_SECONDS * 1000 + (LEASE_SECONDS * 1000) / 3;
  expect(takenAt - killedAt).toBeLessThan(bound + 15_000);
  // ...and never before its lease ran out: no two owners at once.
  const after = await shardLeases();
  for (const s of victimShards) expect(after.get(s)!.expiresAt - LEASE_SECONDS * 1000).toBeGreaterThanOrEqual(lastExpiry - 1000);

  // No reconcile lost: both edits converge, every tenant is Ready.
  await eventually(() => readyAt(editBefore.tenantId, hashSpec(editBefore)), "the edit made before the kill", 90_000, 500);
  await eventually(() => readyAt(editAfter.tenantId, hashSpec(editAfter)), "the edit made after the kill", 90_000, 500);
  await Promise.all(ids.map((id) => eventually(() => readyAt(id), `${id} Ready after the kill`, 90_000, 500)));

  // The survivors own every shard between them, and are ready.
  await eventually(
    async () => {
      const leases = await shardLeases();
      const now = Date.now();
      const held = [...leases.values()].filter((l) => l.expiresAt > now && survivors.some((c) => c.name === l.holder)).length;
      return held === SHARDS ? true : undefined;
    },
    "all shards on the survivors",
    60_000,
    500,
  );
  await eventually(
    async () => ((await Promise.all(survivors.map((c) => readyz(c.port)))).every((s) => s === 200) ? true : undefined),
    "survivors ready",
    60_000,
  );

  // No tenant written by two owners: per tenant, each status names its shard's lease, terms only grow, one holder per term.
  const writes = await statusWrites();
  for (const id of ids) {
    const list = writes.get(id) ?? [];
    expect(list.length, id).toBeGreaterThan(0);
    for (const w of list) expect(w.lease).toBe(`shard-${shardOf(id, SHARDS)}`);
    for (let i = 1; i < list.length; i++) {
      expect(list[i]!.token, `${id}: term went back`).toBeGreaterThanOrEqual(list[i - 1]!.token);
      if (list[i]!.token === list[i - 1]!.token) expect(list[i]!.holder, `${id}: two holders in one term`).toBe(list[i - 1]!.holder);
    }
  }
  // The victim's tenants were written after the kill by their new owner only.
  for (const id of edited) expect(writes.get(id)?.at(-1)?.holder).not.toBe(victim.name);

  // A graceful stop releases at once: the other survivor takes those shards without waiting for an expiry.
  const [stay, go] = survivors as [(typeof survivors)[0], (typeof survivors)[0]];
  go.proc.child.kill("SIGTERM");
  expect(await go.proc.exited).toBe(0);
  const released = [...(await shardLeases())].filter(([, l]) => l.holder === go.name);
  expect(released).toEqual([]);
  await eventually(
    async () => ((await owned(stay.port)) === SHARDS ? true : undefined),
    "the last controller owns every shard",
    30_000,
    200,
  );
}, 300_000);
