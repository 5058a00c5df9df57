import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { shardOf } from "../../src/reconciler/shards.js";
import { eventually } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";
import { spawnCli, type CliProcess } from "../support/spawn.js";

/**
 * Two `tenantctl controller` processes against one account: exactly one
 * holds the controller lease (the fleet-wide work); each tenant is
 * reconciled only by its shard's owner. When the leader is killed (no chance
 * to release), the other takes over within the lease duration and carries on.
 */
let h: OperatorHarness;
const procs: CliProcess[] = [];
const LEASE_SECONDS = 3;

beforeAll(async () => {
  // The harness's own in-process controller is stopped: the two processes are the only ones.
  h = await startHarness({ LEASE_SECONDS: String(LEASE_SECONDS) });
  await h.controller.stop();
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  await h?.stop();
});

async function leaseHolder(name = "controller"): Promise<{ holder?: string; expiresAt?: number } | undefined> {
  const res = await h.clients.dynamodb.send(
    new GetItemCommand({ TableName: h.config.leaseTable, Key: marshall({ pk: `lease#${name}` }), ConsistentRead: true }),
  );
  return res.Item ? (unmarshall(res.Item) as { holder?: string; expiresAt?: number }) : undefined;
}

/** Logged when a controller takes the controller lease (the pool key and the rollout; its shards are apart). */
const LEADS = "acquired leader lease; starting reconcilers";

it("runs exactly one leader and fails over within the lease duration", { timeout: 120_000 }, async () => {
  const env = { ...h.cloud.env, LEASE_SECONDS: String(LEASE_SECONDS), HTTP_PORT: "0", LOG_LEVEL: process.env["CHILD_LOG_LEVEL"] ?? "info" };
  const a = spawnCli(["controller"], { ...env, HOLDER_ID: "controller-a" });
  const b = spawnCli(["controller"], { ...env, HOLDER_ID: "controller-b" });
  procs.push(a, b);
  await Promise.all([a, b].map((p) => p.waitForLine((l) => l["msg"] === "controller started")));

  const first = await eventually(async () => (await leaseHolder())?.holder, "a lease holder");
  const [leader, standby] = first === "controller-a" ? [a, b] : [b, a];
  const leaderLines = () => leader.lines().filter((l) => l["msg"] === LEADS).length;
  const standbyLines = () => standby.lines().filter((l) => l["msg"] === LEADS).length;
  // The leader's fleet-wide work starts after its shards' first sync, so its line may follow "controller started".
  await eventually(async () => (leaderLines() === 1 ? true : undefined), "the leader's line");
  expect(leaderLines()).toBe(1);
  expect(standbyLines()).toBe(0);

  // Shards move while the two balance (b steals from a, which took them all first): wait until each holds half.
  await eventually(async () => {
    const holders = await Promise.all(
      Array.from({ length: h.config.shardCount }, async (_, n) => (await leaseHolder(`shard-${n}`))?.holder),
    );
    const half = h.config.shardCount / 2;
    return holders.filter((x) => x === "controller-a").length === half && holders.filter((x) => x === "controller-b").length === half
      ? true
      : undefined;
  }, "the shards balanced over the two controllers");
  await h.put({ tenantId: "lead-1", tier: "advanced", tenantName: "Lead One" });
  await h.waitForPhase("lead-1", "Ready", 90_000);
  // Only its shard's owner reconciled it.
  const owner = (await leaseHolder(`shard-${shardOf("lead-1", h.config.shardCount)}`))?.holder;
  const other = owner === "controller-a" ? b : a;
  // A late renewal on a loaded machine can let the shard expire and move; the fence then refuses the other's
  // attempt (a LeaseLostError, the key dropped), which is no write of its own.
  const fencedOut = (l: Record<string, unknown>) =>
    (l["msg"] === "reconcile failed" && String(l["err"]).startsWith("LeaseLostError")) ||
    l["msg"] === "reconcile stopped: its shard's lease moved to another controller";
  expect(other.lines().filter((l) => (l["key"] === "lead-1" || l["tenantId"] === "lead-1") && !fencedOut(l))).toEqual([]);

  // Kill the leader: it cannot release, so the standby waits for the expiry.
  const killedAt = Date.now();
  leader.child.kill("SIGKILL");
  await standby.waitForLine((l) => l["msg"] === LEADS, (LEASE_SECONDS + 5) * 1000);
  const takeoverMs = Date.now() - killedAt;
  expect(takeoverMs).toBeLessThan(LEASE_SECONDS * 1000 + 1500);
  expect((await leaseHolder())?.holder).toBe(first === "controller-a" ? "controller-b" : "controller-a");

  await h.put({ tenantId: "lead-2", tier: "premium", tenantName: "Lead Two" });
  await h.waitForPhase("lead-2", "Ready", 90_000);

  // A graceful stop releases the lease and exits 0.
  standby.child.kill("SIGTERM");
  expect(await standby.exited).toBe(0);
  const after = await leaseHolder();
  expect(after?.holder).toBeUndefined();
});
