import {
  AdminAddUserToGroupCommand,
  AdminCreateUserCommand,
  AdminDeleteUserCommand,
  AdminGetUserCommand,
  AdminUpdateUserAttributesCommand,
  CreateGroupCommand,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  DeleteGroupCommand,
  DeleteUserPoolClientCommand,
  DeleteUserPoolCommand,
  DescribeUserPoolCommand,
  ListUserPoolClientsCommand,
  ListUserPoolsCommand,
  ListUsersInGroupCommand,
  type AttributeType,
  type CognitoIdentityProviderClient,
  type UserPoolDescriptionType,
} from "@aws-sdk/client-cognito-identity-provider";
import { UnmanagedResourceError, type AdminResult, type Fence, type IdentityPort, type TenantAdmin, type UserPoolRef } from "../ports.js";
import { MANAGED_BY_KEY, MANAGED_BY_VALUE, TENANT_ID_KEY } from "../tiers/model.js";
import { errorName, wrapAwsError } from "./aws-errors.js";

/**
 * Cognito as the reference architecture provisions it: one user pool shared
 * by the basic tenants, one per tenant onboarded into a silo tier, each with
 * an app client without secret, and the custom attributes tenantId,
 * tenantTier and userRole that the ID token carries to the apps. The tenant
 * admin is a user named by the record's email, in a group named after the
 * tenant (the group is also how a tenant's users are found again).
 *
 * Cognito pool and client names are not unique. Only the lease holder
 * writes, so two controllers do not create at once; should a lost lease race
 * a new leader anyway, after a create the pools (and clients) of that name
 * are listed again and the oldest kept, a newer one this process made
 * deleted. A process killed between its create and that delete leaves a
 * newer pool behind: a leader's first look at the name deletes it (see
 * #find). Every pool is tagged managed-by, and a pool without the tag is
 * never modified or deleted.
 */
export interface CognitoIdentityOptions {
  readonly namePrefix: string;
  readonly region: string;
}

const CUSTOM_ATTRIBUTES = ["tenantId", "tenantTier", "userRole"] as const;
const ADMIN_ROLE = "TenantAdmin";

export class CognitoIdentity implements IdentityPort {
  readonly #cognito: CognitoIdentityProviderClient;
  readonly #o: CognitoIdentityOptions;
  /** Pools found by name: a steady fleet does not list every pool on every reconcile. */
  readonly #known = new Map<string, UserPoolRef>();

  constructor(cognito: CognitoIdentityProviderClient, options: CognitoIdentityOptions) {
    this.#cognito = cognito;
    this.#o = options;
  }

  ensureSharedPool(fence: Fence): Promise<UserPoolRef> {
    return this.#ensurePool(sharedPoolName(this.#o.namePrefix), undefined, fence);
  }

  ensureTenantPool(tenantId: string, fence: Fence): Promise<UserPoolRef> {
    return this.#ensurePool(tenantPoolName(this.#o.namePrefix, tenantId), tenantId, fence);
  }

  findSharedPool(): Promise<UserPoolRef | undefined> {
    return this.#find(sharedPoolName(this.#o.namePrefix));
  }

  findTenantPool(tenantId: string): Promise<UserPoolRef | undefined> {
    return this.#find(tenantPoolName(this.#o.namePrefix, tenantId));
  }

  /**
   * Checks first, creates after: an email held by another tenant's user is
   * refused before anything is made. Creating the group, then the user, then
   * the membership converges after a crash at any point (each step treats
   * "exists" as done).
   */
  async ensureAdmin(pool: UserPoolRef, admin: TenantAdmin, fence: Fence): Promise<AdminResult> {
    const existing = await this.#user(pool, admin.email);
    if (existing !== undefined) {
      const holder = attribute(existing, "custom:tenantId");
      if (holder !== undefined && holder !== admin.tenantId) return { kind: "conflict", holder };
      if (attribute(existing, "custom:tenantTier") !== admin.tier) {
        fence.assertHeld();
        await this.#call(`updating the tier of ${admin.email}`, () =>
          this.#cognito.send(
            new AdminUpdateUserAttributesCommand({
              UserPoolId: pool.userPoolId,
              Username: admin.email,
              UserAttributes: [{ Name: "custom:tenantTier", Value: admin.tier }],
            }),
          ),
        );
      }
    }
    fence.assertHeld();
    await this.#call(
      `creating group ${admin.tenantId}`,
      () =>
        this.#cognito.send(
          new CreateGroupCommand({
            UserPoolId: pool.userPoolId,
            GroupName: admin.tenantId,
            Description: `Users of tenant ${admin.tenantId}`,
          }),
        ),
      "GroupExistsException",
    );
    if (existing === undefined) {
      fence.assertHeld();
      await this.#call(
        `creating the admin user ${admin.email}`,
        () =>
          this.#cognito.send(
            new AdminCreateUserCommand({
              UserPoolId: pool.userPoolId,
              Username: admin.email,
              // No TemporaryPassword from us: Cognito generates one and emails it.
              DesiredDeliveryMediums: ["EMAIL"],
              UserAttributes: [
                { Name: "email", Value: admin.email },
                { Name: "email_verified", Value: "true" },
                { Name: "custom:tenantId", Value: admin.tenantId },
                { Name: "custom:tenantTier", Value: admin.tier },
                { Name: "custom:userRole", Value: ADMIN_ROLE },
              ],
            }),
          ),
        "UsernameExistsException",
      );
    }
    fence.assertHeld();
    await this.#call(`adding ${admin.email} to group ${admin.tenantId}`, () =>
      this.#cognito.send(new AdminAddUserToGroupCommand({ UserPoolId: pool.userPoolId, Username: admin.email, GroupName: admin.tenantId })),
    );
    return { kind: "ok" };
  }

  async removeTenantUsers(pool: UserPoolRef, tenantId: string, fence: Fence): Promise<void> {
    let token: string | undefined;
    const users: string[] = [];
    do {
      let page;
      try {
        page = await this.#cognito.send(
          new ListUsersInGroupCommand({
            UserPoolId: pool.userPoolId,
            GroupName: tenantId,
            ...(token !== undefined ? { NextToken: token } : {}),
          }),
        );
      } catch (err) {
        if (errorName(err) === "ResourceNotFoundException") return; // no group (or no pool): no users
        throw wrapAwsError(err, `listing the users of tenant ${tenantId}`);
      }
      users.push(...(page.Users ?? []).flatMap((u) => (u.Username !== undefined ? [u.Username] : [])));
      token = page.NextToken;
    } while (token !== undefined);
    for (const username of users) {
      fence.assertHeld();
      await this.#call(
        `deleting user ${username}`,
        () => this.#cognito.send(new AdminDeleteUserCommand({ UserPoolId: pool.userPoolId, Username: username })),
        "UserNotFoundException",
      );
    }
    fence.assertHeld();
    await this.#call(
      `deleting group ${tenantId}`,
      () => this.#cognito.send(new DeleteGroupCommand({ UserPoolId: pool.userPoolId, GroupName: tenantId })),
      "ResourceNotFoundException",
    );
  }

  async deleteTenantPool(tenantId: string, fence: Fence): Promise<void> {
    const name = tenantPoolName(this.#o.namePrefix, tenantId);
    for (const pool of await this.#listByName(name)) {
      if (pool.Id === undefined) continue;
      await this.#assertManaged(pool.Id, name);
      fence.assertHeld();
      await this.#call(
        `deleting user pool ${name}`,
        () => this.#cognito.send(new DeleteUserPoolCommand({ UserPoolId: pool.Id })),
        "ResourceNotFoundException",
      );
    }
    this.#known.delete(name);
  }

  issuer(pool: UserPoolRef): string {
    return `https://cognito-idp.${this.#o.region}.amazonaws.com/${pool.userPoolId}`;
  }

  async #ensurePool(name: string, tenantId: string | undefined, fence: Fence): Promise<UserPoolRef> {
    const found = await this.#find(name, fence);
    if (found !== undefined) return found;
    fence.assertHeld();
    const created = await this.#call(`creating user pool ${name}`, () =>
      this.#cognito.send(
        new CreateUserPoolCommand({
          PoolName: name,
          UsernameAttributes: undefined,
          AutoVerifiedAttributes: ["email"],
          AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
          Schema: CUSTOM_ATTRIBUTES.map((n) => ({
            Name: n,
            AttributeDataType: "String",
            Mutable: true,
            StringAttributeConstraints: { MinLength: "1", MaxLength: "256" },
          })),
          UserPoolTags: { [MANAGED_BY_KEY]: MANAGED_BY_VALUE, ...(tenantId !== undefined ? { [TENANT_ID_KEY]: tenantId } : {}) },
        }),
      ),
    );
    const mine = created?.UserPool?.Id;
    // A racing controller may have made one too: the oldest wins, ours goes if newer.
    const pools = sortOldestFirst(await this.#listByName(name));
    const winner = pools[0]?.Id ?? mine;
    if (winner === undefined) throw new Error(`user pool ${name} was created but cannot be found`);
    if (mine !== undefined && mine !== winner) {
      fence.assertHeld();
      await this.#call(
        `deleting the duplicate user pool ${mine}`,
        () => this.#cognito.send(new DeleteUserPoolCommand({ UserPoolId: mine })),
        "ResourceNotFoundException",
      );
    }
    const ref = { userPoolId: winner, appClientId: await this.#ensureClient(winner, name, fence) };
    this.#known.set(name, ref);
    return ref;
  }

  /**
   * The oldest pool of the name, with its app client. With a fence (a
   * leader that may write), newer managed pools of the name without an app
   * client are deleted: each is a create whose process died before it could
   * delete its own (above). Only the pool handed out gets a client, so one
   * without was never given to a tenant and holds no user.
   */
  async #find(name: string, fence?: Fence): Promise<UserPoolRef | undefined> {
    const known = this.#known.get(name);
    if (known !== undefined) return known;
    const [pool, ...newer] = sortOldestFirst(await this.#listByName(name));
    if (pool?.Id === undefined) return undefined;
    await this.#assertManaged(pool.Id, name);
    if (fence !== undefined) for (const extra of newer) if (extra.Id !== undefined) await this.#dropLeftover(extra.Id, name, fence);
    const client = (await this.#clients(pool.Id, name))[0];
    // A pool whose client was never made (a crash in between): ensure makes it.
    if (client === undefined) return undefined;
    const ref = { userPoolId: pool.Id, appClientId: client };
    this.#known.set(name, ref);
    return ref;
  }

  async #ensureClient(userPoolId: string, name: string, fence: Fence): Promise<string> {
    const existing = (await this.#clients(userPoolId, name))[0];
    if (existing !== undefined) return existing;
    fence.assertHeld();
    const created = await this.#call(`creating the app client of ${name}`, () =>
      this.#cognito.send(
        new CreateUserPoolClientCommand({
          UserPoolId: userPoolId,
          ClientName: clientName(name),
          GenerateSecret: false,
          ExplicitAuthFlows: ["ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
          // The apps read these from the ID token.
          ReadAttributes: ["email", ...CUSTOM_ATTRIBUTES.map((a) => `custom:${a}`)],
          // Only email: by default a signed-in user could rewrite its own
          // custom:tenantId and so move itself into another tenant.
          WriteAttributes: ["email"],
        }),
      ),
    );
    const mine = created?.UserPoolClient?.ClientId;
    if (mine === undefined) throw new Error(`the app client of ${name} was created without an id`);
    // Client names are not unique either: of racing creates, the lowest id is
    // kept by everyone, and a newer one of ours is deleted.
    const winner = (await this.#clients(userPoolId, name))[0] ?? mine;
    if (winner !== mine) {
      fence.assertHeld();
      await this.#call(
        `deleting the duplicate app client ${mine}`,
        () => this.#cognito.send(new DeleteUserPoolClientCommand({ UserPoolId: userPoolId, ClientId: mine })),
        "ResourceNotFoundException",
      );
    }
    return winner;
  }

  /** The pool's app clients of our name, lowest id first. */
  async #clients(userPoolId: string, name: string): Promise<string[]> {
    const clients = await this.#call(`listing the app clients of ${name}`, () =>
      this.#cognito.send(new ListUserPoolClientsCommand({ UserPoolId: userPoolId, MaxResults: 60 })),
    );
    return (clients?.UserPoolClients ?? [])
      .filter((c) => c.ClientName === clientName(name))
      .flatMap((c) => (c.ClientId !== undefined ? [c.ClientId] : []))
      .sort();
  }

  async #listByName(name: string): Promise<UserPoolDescriptionType[]> {
    const out: UserPoolDescriptionType[] = [];
    let token: string | undefined;
    do {
      const page = await this.#call("listing user pools", () =>
        this.#cognito.send(new ListUserPoolsCommand({ MaxResults: 60, ...(token !== undefined ? { NextToken: token } : {}) })),
      );
      out.push(...(page?.UserPools ?? []).filter((p) => p.Name === name));
      token = page?.NextToken;
    } while (token !== undefined);
    return out;
  }

  /** Deletes a leftover duplicate pool if it is ours (managed-by) and was never handed out (no app client). */
  async #dropLeftover(userPoolId: string, name: string, fence: Fence): Promise<void> {
    const pool = await this.#call(
      `describing user pool ${name}`,
      () => this.#cognito.send(new DescribeUserPoolCommand({ UserPoolId: userPoolId })),
      "ResourceNotFoundException",
    );
    if (pool?.UserPool?.UserPoolTags?.[MANAGED_BY_KEY] !== MANAGED_BY_VALUE) return;
    const clients = await this.#call(
      `listing the app clients of ${name}`,
      () => this.#cognito.send(new ListUserPoolClientsCommand({ UserPoolId: userPoolId, MaxResults: 60 })),
      "ResourceNotFoundException",
    );
    if ((clients?.UserPoolClients ?? []).length > 0) return;
    fence.assertHeld();
    await this.#call(
      `deleting the duplicate user pool ${userPoolId}`,
      () => this.#cognito.send(new DeleteUserPoolCommand({ UserPoolId: userPoolId })),
      "ResourceNotFoundException",
    );
  }

  async #assertManaged(userPoolId: string, name: string): Promise<void> {
    const pool = await this.#call(`describing user pool ${name}`, () =>
      this.#cognito.send(new DescribeUserPoolCommand({ UserPoolId: userPoolId })),
    );
    if (pool?.UserPool?.UserPoolTags?.[MANAGED_BY_KEY] !== MANAGED_BY_VALUE)
      throw new UnmanagedResourceError(`user pool ${name} (${userPoolId})`);
  }

  async #user(pool: UserPoolRef, username: string): Promise<AttributeType[] | undefined> {
    try {
      return (await this.#cognito.send(new AdminGetUserCommand({ UserPoolId: pool.userPoolId, Username: username }))).UserAttributes ?? [];
    } catch (err) {
      if (errorName(err) === "UserNotFoundException") return undefined;
      throw wrapAwsError(err, `reading user ${username}`);
    }
  }

  /** One call; an error named in `done` means the work is already done (idempotent steps). */
  async #call<T>(what: string, send: () => Promise<T>, done?: string): Promise<T | undefined> {
    try {
      return await send();
    } catch (err) {
      if (done !== undefined && errorName(err) === done) return undefined;
      throw wrapAwsError(err, what);
    }
  }
}

/** Cognito pool names: 1-128 of [\w\s+=,.@-]; tenant ids are [A-Za-z0-9_-], so both fit as they are. */
export function sharedPoolName(prefix: string): string {
  return `${prefix}-pool-users`;
}

export function tenantPoolName(prefix: string, tenantId: string): string {
  return `${prefix}-t-${tenantId}-users`;
}

function clientName(poolName: string): string {
  return `${poolName}-client`;
}

function attribute(attributes: readonly AttributeType[], name: string): string | undefined {
  return attributes.find((a) => a.Name === name)?.Value;
}

function sortOldestFirst(pools: UserPoolDescriptionType[]): UserPoolDescriptionType[] {
  return [...pools].sort(
    (a, b) => (a.CreationDate?.getTime() ?? 0) - (b.CreationDate?.getTime() ?? 0) || (a.Id ?? "").localeCompare(b.Id ?? ""),
  );
}
