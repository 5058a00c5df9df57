import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError } from "../../src/config.js";
import { UsageError } from "../../src/cli/command.js";
import { durationSchema, loadClientConfig, outputSchema, parseCommandArgs, setupHint } from "../../src/cli/client-config.js";

/** Runs `fn` with process.env changed (undefined deletes), then puts every touched variable back. */
async function withEnv(changes: Record<string, string | undefined>, fn: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(changes).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(changes);
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

describe("loadClientConfig", () => {
  const noSdkRegion = async () => undefined;
  const sdkSays = (region: string) => async () => region;

  it("applies the controller's defaults and needs none of the controller-only variables", async () => {
    expect(await loadClientConfig({}, sdkSays("eu-west-3"))).toEqual({
      region: "eu-west-3",
      endpoint: undefined,
      profile: undefined,
      tenantsTable: "tenants",
      leaseTable: "tenants-operator",
      eventBusName: "default",
      eventSource: "sbt.application.plane",
      namePrefix: "saas",
      catalogueFile: undefined,
    });
  });

  it("reads every variable; empty means unset", async () => {
    const c = await loadClientConfig(
      {
        AWS_REGION: "eu-west-1",
        AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
        TENANTS_TABLE: "t-x",
        LEASE_TABLE: "ops",
        EVENT_BUS_NAME: "",
        EVENT_SOURCE: "me",
        NAME_PREFIX: "acme",
        AWS_PROFILE: "dev",
      },
      noSdkRegion,
    );
    expect(c).toEqual({
      region: "eu-west-1",
      endpoint: "http://127.0.0.1:4566",
      profile: "dev",
      tenantsTable: "t-x",
      leaseTable: "ops",
      eventBusName: "default",
      eventSource: "me",
      namePrefix: "acme",
      catalogueFile: undefined,
    });
  });

  it("takes the region from AWS_REGION, then AWS_DEFAULT_REGION, then the SDK's chain with the profile; never a guess", async () => {
    const asked: (string | undefined)[] = [];
    const sdk = async (profile: string | undefined) => {
      asked.push(profile);
      return "ap-south-1";
    };
    expect((await loadClientConfig({ AWS_REGION: "eu-west-1", AWS_DEFAULT_REGION: "us-west-2" }, sdk)).region).toBe("eu-west-1");
    expect((await loadClientConfig({ AWS_DEFAULT_REGION: "us-west-2" }, sdk)).region).toBe("us-west-2");
    expect(asked).toEqual([]);
    expect((await loadClientConfig({ AWS_PROFILE: "dev" }, sdk)).region).toBe("ap-south-1");
    expect(asked).toEqual(["dev"]);
    await expect(loadClientConfig({ AWS_PROFILE: "dev" }, noSdkRegion)).rejects.toThrow(/no AWS region: set AWS_REGION .*profile "dev"/);
  });

  it("finds the region of the profile through the SDK itself (AWS_PROFILE, the shared config file)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aws-config-"));
    const file = join(dir, "config");
    await writeFile(file, "[default]\nregion = ap-southeast-2\n\n[profile dev]\nregion = eu-central-1\n");
    await writeFile(join(dir, "empty"), "");
    try {
      await withEnv({ AWS_REGION: undefined, AWS_CONFIG_FILE: file, AWS_SHARED_CREDENTIALS_FILE: join(dir, "none") }, async () => {
        expect((await loadClientConfig({ AWS_PROFILE: "dev" })).region).toBe("eu-central-1");
        expect((await loadClientConfig({})).region).toBe("ap-southeast-2");
      });
      await withEnv(
        { AWS_REGION: undefined, AWS_CONFIG_FILE: join(dir, "empty"), AWS_SHARED_CREDENTIALS_FILE: join(dir, "none") },
        async () => {
          await expect(loadClientConfig({})).rejects.toThrow(ConfigError);
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    { reason: "a region that is not one", env: { AWS_REGION: "mars" }, name: "AWS_REGION" },
    { reason: "a default region that is not one", env: { AWS_DEFAULT_REGION: "mars" }, name: "AWS_DEFAULT_REGION" },
    { reason: "an endpoint that is not a URL", env: { AWS_ENDPOINT_URL: "localhost 4566" }, name: "AWS_ENDPOINT_URL" },
    { reason: "a table name with a space", env: { TENANTS_TABLE: "my table" }, name: "TENANTS_TABLE" },
  ])("names the variable: $reason", async ({ env, name }) => {
    let caught: unknown;
    try {
      await loadClientConfig(env, noSdkRegion);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toHaveLength(1);
    expect((caught as ConfigError).problems[0]).toMatch(new RegExp(`^${name}`));
  });
});

describe("setupHint: the fix for an error of the person's setup, by the error's type", () => {
  const closedPort = async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    return port;
  };
  const creds = { accessKeyId: "test", secretAccessKey: "test" };

  it("connection refused at the endpoint: is npm start running?", async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const client = new DynamoDBClient({ region: "us-east-1", endpoint, credentials: creds, maxAttempts: 1 });
    const err = await client.send(new ListTablesCommand({})).catch((e: unknown) => e);
    client.destroy();
    expect(setupHint(err, { endpoint })).toBe(
      `no AWS endpoint at ${endpoint}: is \`npm start\` running? (or unset AWS_ENDPOINT_URL to use AWS)`,
    );
    // Wrapped with context (as the providers and events setup do), it is still recognised through its cause.
    expect(setupHint(new Error("setting up", { cause: err }), { endpoint })).toMatch(/^no AWS endpoint at/);
  });

  it("no credentials anywhere: set AWS_PROFILE or the keys", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aws-none-"));
    const none = {
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_CONFIG_FILE: join(dir, "config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"),
      // The chain's last resort is the instance metadata service, off loopback: never asked.
      AWS_EC2_METADATA_DISABLED: "true",
    };
    try {
      await withEnv(none, async () => {
        const endpoint = `http://127.0.0.1:${await closedPort()}`;
        const client = new DynamoDBClient({ region: "us-east-1", endpoint, maxAttempts: 1 });
        const err = await client.send(new ListTablesCommand({})).catch((e: unknown) => e);
        client.destroy();
        expect((err as Error).name).toBe("CredentialsProviderError");
        expect(setupHint(err, { endpoint: undefined, region: "eu-west-1" })).toMatch(
          /^no AWS credentials: set AWS_PROFILE .* or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY$/,
        );
        expect(setupHint(err, { endpoint })).toMatch(
          /^no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \(any values work against/,
        );
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("says nothing for an ordinary AWS error, even one whose message mentions a network word", () => {
    const err = Object.assign(new Error("table ECONNREFUSED not found"), { name: "ResourceNotFoundException" });
    expect(setupHint(err, { endpoint: undefined })).toBeUndefined();
    const rejected = Object.assign(new Error("The security token included in the request is invalid."), {
      name: "UnrecognizedClientException",
    });
    expect(setupHint(rejected, { endpoint: undefined })).toMatch(/^AWS refused the credentials \(UnrecognizedClientException\)/);
  });
});

describe("parseCommandArgs", () => {
  const options = { output: { type: "string", short: "o" }, timeout: { type: "string" }, purge: { type: "boolean" } } as const;
  const schema = z.object({ output: outputSchema.optional(), timeout: durationSchema.optional(), purge: z.boolean().optional() });
  const one = { min: 1, max: 1, names: "tenant ID" };

  it("parses flags and positionals", () => {
    const r = parseCommandArgs(["t1", "-o", "json", "--timeout", "5m", "--purge"], options, schema, one);
    expect(r.positionals).toEqual(["t1"]);
    expect(r.flags).toEqual({ output: "json", timeout: 300_000, purge: true });
  });

  it.each([
    { reason: "an unknown flag", args: ["t1", "--force"], match: /--force/ },
    { reason: "a bad value, naming the flag", args: ["t1", "-o", "xml"], match: /--output: must be text, json or yaml/ },
    { reason: "a bad duration, naming the flag", args: ["t1", "--timeout", "5 minutes"], match: /--timeout: must be a duration/ },
    { reason: "a missing positional", args: [], match: /missing tenant ID/ },
    { reason: "one positional too many", args: ["t1", "t2"], match: /unexpected argument "t2"/ },
  ])("throws a UsageError for $reason", ({ args, match }) => {
    expect(() => parseCommandArgs(args, options, schema, one)).toThrow(UsageError);
    expect(() => parseCommandArgs(args, options, schema, one)).toThrow(match);
  });

  it.each([
    ["300s", 300_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["250ms", 250],
    ["30", 30_000],
    ["1.5s", 1500],
  ])("duration %s is %d ms", (text, ms) => {
    expect(durationSchema.parse(text)).toBe(ms);
  });
});
