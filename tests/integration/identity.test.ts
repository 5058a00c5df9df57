import {
  AdminGetUserCommand,
  CognitoIdentityProviderClient,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  ListUserPoolsCommand,
  ListUsersInGroupCommand,
} from "@aws-sdk/client-cognito-identity-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnmanagedResourceError, type Fence } from "../../src/ports.js";
import { CognitoIdentity, sharedPoolName, tenantPoolName } from "../../src/providers/cognito-identity.js";
import { startMoto, type MotoServer } from "../support/moto.js";
import { localTarget } from "../../src/localcloud/index.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

const held: Fence = { assertHeld() {} };
let moto: MotoServer;
let client: CognitoIdentityProviderClient;
const identity = () => new CognitoIdentity(client, { namePrefix: "idt", region: "us-east-1" });

beforeAll(async () => {
  moto = await startMoto();
  client = awsClient(CognitoIdentityProviderClient, localTarget(moto.endpoint), RETRIES.standard);
});
afterAll(async () => {
  client?.destroy();
  await moto?.stop();
});

async function poolsNamed(name: string) {
  return ((await client.send(new ListUserPoolsCommand({ MaxResults: 60 }))).UserPools ?? []).filter((p) => p.Name === name);
}

async function attributes(userPoolId: string, email: string): Promise<Record<string, string>> {
  const user = await client.send(new AdminGetUserCommand({ UserPoolId: userPoolId, Username: email }));
  return Object.fromEntries((user.UserAttributes ?? []).map((a) => [a.Name ?? "", a.Value ?? ""]));
}

describe("CognitoIdentity against the local Cognito", () => {
  it("creates the shared pool once: a second controller (a new leader) finds it rather than making another", async () => {
    const a = await identity().ensureSharedPool(held);
    const b = await identity().ensureSharedPool(held);
    expect(b).toEqual(a);
    expect(await poolsNamed(sharedPoolName("idt"))).toHaveLength(1);
    expect(await identity().findSharedPool()).toEqual(a);
  });

  it("makes the admin with the tenant's attributes and group; refuses the same email for another tenant, creating nothing", async () => {
    const id = identity();
    const pool = await id.ensureSharedPool(held);
    expect(await id.ensureAdmin(pool, { tenantId: "t-one", tier: "basic", email: "admin@one.test" }, held)).toEqual({ kind: "ok" });
    expect(await attributes(pool.userPoolId, "admin@one.test")).toMatchObject({
      "custom:tenantId": "t-one",
      "custom:tenantTier": "basic",
      "custom:userRole": "TenantAdmin",
      email: "admin@one.test",
    });
    const members = await client.send(new ListUsersInGroupCommand({ UserPoolId: pool.userPoolId, GroupName: "t-one" }));
    expect(members.Users?.map((u) => u.Username)).toEqual(["admin@one.test"]);

    expect(await id.ensureAdmin(pool, { tenantId: "t-two", tier: "basic", email: "admin@one.test" }, held)).toEqual({
      kind: "conflict",
      holder: "t-one",
    });
    await expect(client.send(new ListUsersInGroupCommand({ UserPoolId: pool.userPoolId, GroupName: "t-two" }))).rejects.toThrow();

    // A tier move updates the claim; running it again changes nothing.
    await id.ensureAdmin(pool, { tenantId: "t-one", tier: "advanced", email: "admin@one.test" }, held);
    await id.ensureAdmin(pool, { tenantId: "t-one", tier: "advanced", email: "admin@one.test" }, held);
    expect((await attributes(pool.userPoolId, "admin@one.test"))["custom:tenantTier"]).toBe("advanced");

    await id.removeTenantUsers(pool, "t-one", held);
    await expect(client.send(new AdminGetUserCommand({ UserPoolId: pool.userPoolId, Username: "admin@one.test" }))).rejects.toThrow();
    await id.removeTenantUsers(pool, "t-one", held); // gone is nothing to do
  });

  it("gives a silo tenant a pool of its own and deletes only that one", async () => {
    const id = identity();
    const own = await id.ensureTenantPool("t-silo", held);
    expect(own.userPoolId).not.toBe((await id.ensureSharedPool(held)).userPoolId);
    expect(await id.ensureTenantPool("t-silo", held)).toEqual(own);
    await id.deleteTenantPool("t-silo", held);
    expect(await poolsNamed(tenantPoolName("idt", "t-silo"))).toEqual([]);
    expect(await poolsNamed(sharedPoolName("idt"))).toHaveLength(1);
    await id.deleteTenantPool("t-silo", held); // absent is success
  });

  it("deletes a newer pool a killed controller left behind, and only that kind", async () => {
    // Found by the chaos runs (RELIABILITY.md): a controller SIGKILLed between
    // CreateUserPool and deleting its own newer duplicate left two shared pools for good.
    const name = tenantPoolName("idt", "t-crash");
    const kept = await identity().ensureTenantPool("t-crash", held);
    // Creation dates order the pools; moto's may have one-second steps.
    await new Promise((r) => setTimeout(r, 1100));
    const managed = { "managed-by": "ecs-tenant-operator", "tenant-id": "t-crash" };
    const leftover = await client.send(new CreateUserPoolCommand({ PoolName: name, UserPoolTags: managed }));
    const handedOut = await client.send(new CreateUserPoolCommand({ PoolName: name, UserPoolTags: managed }));
    await client.send(new CreateUserPoolClientCommand({ UserPoolId: handedOut.UserPool?.Id, ClientName: `${name}-client` }));
    const foreign = await client.send(new CreateUserPoolCommand({ PoolName: name }));
    const ids = async () => (await poolsNamed(name)).map((p) => p.Id).sort();
    const all = [kept.userPoolId, leftover.UserPool?.Id, handedOut.UserPool?.Id, foreign.UserPool?.Id].sort();

    // Reading (tenantctl plan) deletes nothing.
    expect(await identity().findTenantPool("t-crash")).toEqual(kept);
    expect(await ids()).toEqual(all);
    // A new leader's first ensure finds the oldest and deletes the leftover: managed, and never given a client.
    expect(await identity().ensureTenantPool("t-crash", held)).toEqual(kept);
    expect(await ids()).toEqual(all.filter((id) => id !== leftover.UserPool?.Id));
  });

  it("never touches a pool without managed-by", async () => {
    await client.send(new CreateUserPoolCommand({ PoolName: tenantPoolName("idt", "t-hand") }));
    await expect(identity().deleteTenantPool("t-hand", held)).rejects.toBeInstanceOf(UnmanagedResourceError);
    expect(await poolsNamed(tenantPoolName("idt", "t-hand"))).toHaveLength(1);
  });
});
