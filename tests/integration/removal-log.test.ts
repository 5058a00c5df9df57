import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeaseLostError, type Fence } from "../../src/ports.js";
import { ensureLeaseTable } from "../../src/providers/dynamodb-lease-store.js";
import { DynamoRemovalLog } from "../../src/providers/removal-log.js";
import { startMoto, type MotoServer } from "../support/moto.js";
import { localTarget } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

const TABLE = "removals-operator";
const held: Fence = { assertHeld() {} };
let moto: MotoServer;
let client: DynamoDBClient;
let log: DynamoRemovalLog;

beforeAll(async () => {
  moto = await startMoto();
  client = awsClient(DynamoDBClient, localTarget(moto.endpoint), RETRIES.standard);
  await ensureLeaseTable(client, TABLE);
  log = new DynamoRemovalLog(client, TABLE);
});
afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

describe("DynamoRemovalLog", () => {
  it("keeps the first sighting of a removal, lists pending ones, and forgets on clear", async () => {
    const first = await log.record({ tenantId: "a", registrationId: "reg-a", removedAt: "2026-11-30T10:00:00.000Z" }, held);
    expect(first).toEqual({ tenantId: "a", registrationId: "reg-a", removedAt: "2026-11-30T10:00:00.000Z" });
    // Seen again later (the stream repeats itself, a second controller): the first time stays.
    expect(await log.record({ tenantId: "a", removedAt: "2026-11-30T11:00:00.000Z" }, held)).toEqual(first);
    await log.record({ tenantId: "b", removedAt: "2026-11-30T10:05:00.000Z" }, held);
    expect((await log.list()).map((r) => r.tenantId).sort()).toEqual(["a", "b"]);
    await log.clear("a", held);
    expect(await log.get("a")).toBeUndefined();
    expect((await log.list()).map((r) => r.tenantId)).toEqual(["b"]);
  });

  it("writes nothing without the lease", async () => {
    const lost: Fence = {
      assertHeld() {
        throw new LeaseLostError();
      },
    };
    await expect(log.record({ tenantId: "z", removedAt: "2026-11-30T10:00:00.000Z" }, lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await log.get("z")).toBeUndefined();
  });
});
