import {
  AdminInitiateAuthCommand,
  AdminRespondToAuthChallengeCommand,
  AdminSetUserPasswordCommand,
  CognitoIdentityProviderClient,
  ListUserPoolsCommand,
} from "@aws-sdk/client-cognito-identity-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localTarget } from "../../src/localcloud/index.js";
import { eventually, type ReceivedEvent } from "../support/event-sink.js";
import { startHarness, type OperatorHarness } from "../support/operator.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

/**
 * The login round trip as SBT and the reference web app do it: the
 * provisionSuccess event, SBT's registration PATCH, tenantConfig, then the
 * tenant admin signing in against the local Cognito with the temporary
 * password and the new-password challenge. The ID token must carry the
 * tenant's id and tier.
 */
let h: OperatorHarness;
let cognito: CognitoIdentityProviderClient;
const API = "https://api.example.test/prod/";

beforeAll(async () => {
  h = await startHarness({ API_GATEWAY_URL: API });
  cognito = awsClient(CognitoIdentityProviderClient, localTarget(h.cloud.endpoint, h.config.region), RETRIES.standard);
});
afterAll(async () => {
  cognito?.destroy();
  await h?.stop();
});

/** SBT's tenant-registration service: a PATCH that sets what the event's jobOutput carries. */
function applyRegistrationPatch(registration: Record<string, unknown>, event: ReceivedEvent): Record<string, unknown> {
  const jobOutput = event.detail["jobOutput"] as { tenantData: Record<string, unknown>; tenantRegistrationData: Record<string, unknown> };
  return {
    ...registration,
    ...jobOutput.tenantRegistrationData,
    tenantData: { ...(registration["tenantData"] as object), ...jobOutput.tenantData },
  };
}

async function provisioned(tenantId: string, specHash?: string): Promise<ReceivedEvent> {
  return eventually(
    async () => {
      const events = await h.sink.of(tenantId, "sbt_aws_provisionSuccess");
      return events.find((e) => specHash === undefined || e.detail["specHash"] === specHash);
    },
    `provisionSuccess of ${tenantId}`,
    60_000,
    250,
  );
}

async function signIn(config: { userPoolId: string; appClientId: string }, email: string): Promise<Record<string, unknown>> {
  // Cognito emails the admin a temporary password; here the test plays that email.
  const temporary = "Temp-Passw0rd!";
  await cognito.send(
    new AdminSetUserPasswordCommand({ UserPoolId: config.userPoolId, Username: email, Password: temporary, Permanent: false }),
  );
  const first = await cognito.send(
    new AdminInitiateAuthCommand({
      UserPoolId: config.userPoolId,
      ClientId: config.appClientId,
      AuthFlow: "ADMIN_USER_PASSWORD_AUTH",
      AuthParameters: { USERNAME: email, PASSWORD: temporary },
    }),
  );
  expect(first.ChallengeName).toBe("NEW_PASSWORD_REQUIRED");
  const done = await cognito.send(
    new AdminRespondToAuthChallengeCommand({
      UserPoolId: config.userPoolId,
      ClientId: config.appClientId,
      ChallengeName: "NEW_PASSWORD_REQUIRED",
      Session: first.Session,
      ChallengeResponses: { USERNAME: email, NEW_PASSWORD: "Chosen-Passw0rd!" },
    }),
  );
  const token = done.AuthenticationResult?.IdToken;
  expect(token).toBeTruthy();
  const payload = (token ?? "").split(".")[1] ?? "";
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
}

describe("login round trip", () => {
  it("a premium tenant's admin signs in with what SBT stored from provisionSuccess; the ID token names the tenant and tier", async () => {
    await h.put({
      tenantId: "login-prem",
      tier: "premium",
      tenantName: "Login Premium",
      email: "admin@login-prem.test",
      tenantRegistrationId: "reg-lp",
    });
    const event = await provisioned("login-prem");
    const registration = applyRegistrationPatch({ tenantRegistrationId: "reg-lp", tenantData: { tenantName: "Login Premium" } }, event);
    const tenantConfig = JSON.parse(String((registration["tenantData"] as Record<string, unknown>)["tenantConfig"])) as {
      userPoolId: string;
      appClientId: string;
      apiGatewayUrl: string;
    };
    expect(tenantConfig.apiGatewayUrl).toBe(API);
    expect(registration["registrationStatus"]).toBe("Created");

    const claims = await signIn(tenantConfig, "admin@login-prem.test");
    expect(claims["custom:tenantId"]).toBe("login-prem");
    expect(claims["custom:tenantTier"]).toBe("premium");
    expect(claims["custom:userRole"]).toBe("TenantAdmin");
    expect(claims["aud"]).toBe(tenantConfig.appClientId);

    // Offboarding removes the tenant's users and, after the export, its own pool.
    await h.update("login-prem", { sbtaws_active: false });
    await h.waitForPhase("login-prem", "Deprovisioned");
    const pools = (await cognito.send(new ListUserPoolsCommand({ MaxResults: 60 }))).UserPools ?? [];
    expect(pools.map((p) => p.Id)).not.toContain(tenantConfig.userPoolId);
  });

  it("a basic tenant signs in through the shared pool; after a move to advanced it keeps its pool and the token says advanced", async () => {
    await h.put({ tenantId: "login-basic", tier: "basic", tenantName: "Login Basic", email: "admin@login-basic.test" });
    const event = await provisioned("login-basic");
    const config = JSON.parse(
      String((event.detail["jobOutput"] as { tenantData: Record<string, unknown> }).tenantData["tenantConfig"]),
    ) as { userPoolId: string; appClientId: string };
    expect((await signIn(config, "admin@login-basic.test"))["custom:tenantTier"]).toBe("basic");

    await h.update("login-basic", { tier: "advanced" });
    const moved = await eventually(
      async () => {
        const s = await h.status("login-basic");
        return s?.phase === "Ready" && s.servingTier === "advanced" && s.migration === undefined ? s : undefined;
      },
      "login-basic moved to advanced",
      90_000,
      250,
    );
    const after = await provisioned("login-basic", moved.observedSpecHash);
    const configAfter = JSON.parse(
      String((after.detail["jobOutput"] as { tenantData: Record<string, unknown> }).tenantData["tenantConfig"]),
    ) as { userPoolId: string; appClientId: string };
    expect(configAfter.userPoolId).toBe(config.userPoolId);
    expect((await signIn(configAfter, "admin@login-basic.test"))["custom:tenantTier"]).toBe("advanced");
  });
});
