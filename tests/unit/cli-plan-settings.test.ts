import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultCatalogue } from "../../src/apps/catalogue.js";
import { planCatalogue, planConfig, type Published } from "../../src/cli/commands/plan.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { settingsOf } from "../../src/providers/controller-settings.js";

/** The controller's environment in some deployment, every setting plan depends on away from its default. */
const controllerEnv = {
  AWS_REGION: "eu-west-1",
  TENANTS_TABLE: "sbt-tenants",
  LEASE_TABLE: "sbt-operator",
  EVENT_BUS_NAME: "sbt-bus",
  EVENT_SOURCE: "sbt.app",
  NAME_PREFIX: "acme",
  POOL_CLUSTER: "acme-shared",
  ADVANCED_CLUSTER: "acme-silo",
  SUBNETS: "subnet-0a,subnet-0b",
  SECURITY_GROUPS: "sg-0c",
  LISTENER_ARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/acme/0abc/0def",
  VPC_ID: "vpc-0e",
  LOG_RETENTION_DAYS: "90",
  BACKUP_BUCKET: "acme-backups",
  MIGRATION_DRAIN_SECONDS: "45",
  API_GATEWAY_URL: "https://abc.execute-api.eu-west-1.amazonaws.com/prod/",
  HTTP_PORT: "9090",
};
const controller = loadConfig(controllerEnv);
const catalogue = { apps: { ...defaultCatalogue.apps, orders: { ...defaultCatalogue.apps.orders, version: "2.7.1" } } };
const found: Published = {
  kind: "found",
  settings: settingsOf(controller, catalogue, { holder: "ctl-1", token: 4, accountId: "123456789012", now: new Date() }),
};
/** What a workstation has: credentials, the region and where the tables are. */
const workstation = { AWS_REGION: "eu-west-1", TENANTS_TABLE: "sbt-tenants", LEASE_TABLE: "sbt-operator" };
const client = { region: "eu-west-1", leaseTable: "sbt-operator" };

describe("planConfig: the published settings fill in what the workstation lacks", () => {
  it("gives plan the controller's configuration from its published settings alone", () => {
    const c = planConfig(workstation, client, found);
    const planRelevant = (x: typeof c) => {
      const { httpPort: _p, holderId: _h, concurrency: _c, resyncSeconds: _r, leaseSeconds: _l, logLevel: _g, ...rest } = x;
      return rest;
    };
    expect(planRelevant(c)).toEqual(planRelevant(controller));
  });

  it("lets the person's own variables win, one by one", () => {
    const c = planConfig({ ...workstation, SUBNETS: "subnet-0f", NAME_PREFIX: "mine", LOG_RETENTION_DAYS: "7" }, client, found);
    expect(c.subnets).toEqual(["subnet-0f"]);
    expect(c.namePrefix).toBe("mine");
    expect(c.logRetentionDays).toBe(7);
    expect(c.securityGroups).toEqual(["sg-0c"]);
    expect(c.vpcId).toBe("vpc-0e");
  });

  it("without settings, a complete environment is enough", () => {
    const c = planConfig(controllerEnv, client, { kind: "none", why: "" });
    expect(c.listenerArn).toBe(controllerEnv.LISTENER_ARN);
    expect(c.poolCluster).toBe("acme-shared");
  });

  it("without either, names the table, what to set, and the way out", () => {
    let caught: unknown;
    try {
      planConfig({ ...workstation, SUBNETS: "subnet-0a" }, client, { kind: "none", why: " (the table does not exist)" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      "no controller has published its settings in table sbt-operator (the table does not exist): set SECURITY_GROUPS, LISTENER_ARNS, VPC_ID (the export line `npm start` prints has them), or start a controller",
    ]);
  });

  it("a bad variable of the person's is still reported as such", () => {
    expect(() => planConfig({ ...workstation, VPC_ID: "vpc-ZZ" }, client, found)).toThrow(/VPC_ID must be a VPC id/);
  });
});

describe("planCatalogue", () => {
  it("is the controller's published catalogue, unless CATALOGUE_FILE is given here", async () => {
    const c = planConfig(workstation, client, found);
    expect((await planCatalogue(c, found.kind === "found" ? found.settings : undefined)).apps.orders.version).toBe("2.7.1");
    expect(await planCatalogue(c, undefined)).toEqual(defaultCatalogue);
    const dir = await mkdtemp(join(tmpdir(), "catalogue-"));
    try {
      const file = join(dir, "catalogue.json");
      const mine = { apps: { ...defaultCatalogue.apps, orders: { ...defaultCatalogue.apps.orders, version: "9.9.9" } } };
      await writeFile(file, JSON.stringify(mine));
      const withFile = planConfig({ ...workstation, CATALOGUE_FILE: file }, client, found);
      expect((await planCatalogue(withFile, found.kind === "found" ? found.settings : undefined)).apps.orders.version).toBe("9.9.9");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
