import { DynamoDBClient, GetItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeaseLostError, type Fence } from "../../src/ports.js";
import { CaseClaims } from "../../src/providers/case-claims.js";
import { ensureLeaseTable } from "../../src/providers/dynamodb-lease-store.js";
import { startMoto, type MotoServer } from "../support/moto.js";
import { localTarget } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

const TABLE = "tenants-operator";
const held: Fence = { assertHeld: () => undefined };
const lost: Fence = {
  assertHeld: () => {
    throw new LeaseLostError();
  },
};

let moto: MotoServer;
let client: DynamoDBClient;

beforeAll(async () => {
  moto = await startMoto();
  client = awsClient(DynamoDBClient, localTarget(moto.endpoint), RETRIES.standard);
  await ensureLeaseTable(client, TABLE);
});

afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

async function storedHolder(lowerId: string): Promise<string | undefined> {
  const out = await client.send(
    new GetItemCommand({ TableName: TABLE, Key: { pk: { S: `tenant-id-ci#${lowerId}` } }, ConsistentRead: true }),
  );
  return out.Item?.["tenantId"]?.S;
}

describe("CaseClaims on moto", () => {
  it("gives lower(id) to one exact id at a time, idempotently, and frees it only for its holder", async () => {
    const claims = new CaseClaims(client, TABLE);
    expect(await claims.claim("Acme", held)).toEqual({ ok: true });
    expect(await storedHolder("acme")).toBe("Acme");

    expect(await claims.claim("acme", held)).toEqual({ ok: false, holder: "Acme" });
    expect(await claims.claim("ACME", held)).toEqual({ ok: false, holder: "Acme" });
    // The holder claiming again (every reconcile does) changes nothing.
    expect(await claims.claim("Acme", held)).toEqual({ ok: true });

    // A loser's release must not free the winner's claim.
    await claims.release("acme", held);
    expect(await storedHolder("acme")).toBe("Acme");

    await claims.release("Acme", held);
    expect(await storedHolder("acme")).toBeUndefined();
    // Releasing what is already released is nothing to do.
    await expect(claims.release("Acme", held)).resolves.toBeUndefined();

    expect(await claims.claim("acme", held)).toEqual({ ok: true });
    expect(await storedHolder("acme")).toBe("acme");
    expect(await claims.claim("Acme", held)).toEqual({ ok: false, holder: "acme" });
  });

  it("keeps the registration id with the claim and lists the claims held, so a deleted record's tenant is found by its claim", async () => {
    const claims = new CaseClaims(client, TABLE);
    expect(await claims.claim("Initech", held, "reg-9")).toEqual({ ok: true });
    expect(await claims.get("Initech")).toEqual({ tenantId: "Initech", registrationId: "reg-9" });
    expect(await claims.get("initech")).toBeUndefined(); // held, but by another casing
    expect(await claims.get("Umbrella")).toBeUndefined();
    await claims.claim("Umbrella", held);
    const listed = await claims.list();
    expect(listed).toContainEqual({ tenantId: "Initech", registrationId: "reg-9" });
    expect(listed).toContainEqual({ tenantId: "Umbrella" });
    await claims.release("Initech", held);
    expect((await claims.list()).map((c) => c.tenantId)).not.toContain("Initech");
  });

  it("writes nothing without the lease", async () => {
    const claims = new CaseClaims(client, TABLE);
    await expect(claims.claim("Fenced", lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await storedHolder("fenced")).toBeUndefined();
    await claims.claim("Fenced", held);
    await expect(claims.release("Fenced", lost)).rejects.toBeInstanceOf(LeaseLostError);
    expect(await storedHolder("fenced")).toBe("Fenced");
  });

  it("8 concurrent claims of differently-cased ids: exactly one holder, and every loser names it", async () => {
    const ids = ["globex", "Globex", "GLOBEX", "gLobex", "glObex", "globEX", "GloBex", "globeX"];
    // Separate instances, as separate controllers would be.
    const results = await Promise.all(ids.map((id) => new CaseClaims(client, TABLE).claim(id, held)));
    const winners = ids.filter((_, i) => results[i]?.ok === true);
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    expect(await storedHolder("globex")).toBe(winner);
    for (const [i, r] of results.entries()) {
      if (ids[i] !== winner) expect(r).toEqual({ ok: false, holder: winner });
    }
    const items = (await client.send(new ScanCommand({ TableName: TABLE, ConsistentRead: true }))).Items ?? [];
    expect(items.filter((it) => it["pk"]?.S === "tenant-id-ci#globex")).toHaveLength(1);
  });
});
