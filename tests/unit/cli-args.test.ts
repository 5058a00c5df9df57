import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError } from "../../src/config.js";
import { UsageError } from "../../src/cli/command.js";
import { durationSchema, loadClientConfig, outputSchema, parseCommandArgs } from "../../src/cli/client-config.js";

describe("loadClientConfig", () => {
  it("applies the controller's defaults and needs none of the controller-only variables", () => {
    expect(loadClientConfig({})).toEqual({
      region: "us-east-1",
      endpoint: undefined,
      tenantsTable: "tenants",
      leaseTable: "tenants-operator",
      eventBusName: "default",
      eventSource: "sbt.application.plane",
      catalogueFile: undefined,
    });
  });

  it("reads every variable; empty means unset", () => {
    const c = loadClientConfig({
      AWS_REGION: "eu-west-1",
      AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
      TENANTS_TABLE: "t-x",
      EVENT_BUS_NAME: "",
      EVENT_SOURCE: "me",
    });
    expect(c).toEqual({
      region: "eu-west-1",
      endpoint: "http://127.0.0.1:4566",
      tenantsTable: "t-x",
      leaseTable: "t-x-operator",
      eventBusName: "default",
      eventSource: "me",
      catalogueFile: undefined,
    });
  });

  it.each([
    { reason: "a region that is not one", env: { AWS_REGION: "mars" }, name: "AWS_REGION" },
    { reason: "an endpoint that is not a URL", env: { AWS_ENDPOINT_URL: "localhost 4566" }, name: "AWS_ENDPOINT_URL" },
    { reason: "a table name with a space", env: { TENANTS_TABLE: "my table" }, name: "TENANTS_TABLE" },
  ])("names the variable: $reason", ({ env, name }) => {
    let caught: unknown;
    try {
      loadClientConfig(env);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toHaveLength(1);
    expect((caught as ConfigError).problems[0]).toMatch(new RegExp(`^${name}`));
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
