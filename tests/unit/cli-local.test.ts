import { describe, expect, it } from "vitest";
import { PassThrough } from "node:stream";
import { UsageError } from "../../src/cli/command.js";
import { controllerEnv, exportLine, localCommand, parseExportLine } from "../../src/cli/commands/local.js";
import { loadConfig } from "../../src/config.js";

/**
 * The `export ...` line `npm start` prints is the whole contract between the
 * local AWS and a `tenantctl controller` started apart from it
 * (docs/design.md "Contract: running it"): pasted alone, it must give a
 * controller the same account, names included.
 */
const LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas-local/e8c8d7b80b71f56f/904e2125603f02f8";
const LISTENER_2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas-local-2/0a8c8d7b80b71f56/0b4e2125603f02f8";

describe("the local export line", () => {
  it("carries every name a controller needs, so a controller configured from it alone meets the same account", () => {
    const config = loadConfig({
      AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
      SUBNETS: "subnet-0a,subnet-0b",
      SECURITY_GROUPS: "sg-0c",
      LISTENER_ARNS: `${LISTENER},${LISTENER_2}`,
      TENANTS_PER_LISTENER: "7",
      VPC_ID: "vpc-0d",
      TENANTS_TABLE: "sbt-tenants",
      LEASE_TABLE: "ops.lease",
      EVENT_BUS_NAME: "the bus's name",
      EVENT_SOURCE: "sbt.custom",
      NAME_PREFIX: "acme1",
      POOL_CLUSTER: "shared-pool",
      ADVANCED_CLUSTER: "shared-adv",
      BACKUP_BUCKET: "acme-backups",
      ECS_EVENTS_QUEUE_URL: "http://127.0.0.1:4566/123456789012/acme1-ecs-events",
    });
    const printed = `Local AWS on ...\n\n${exportLine(controllerEnv("http://127.0.0.1:4566", config))}\n  npm run -s tenantctl -- list\n`;
    const env = parseExportLine(printed);
    expect(env).toBeDefined();
    // Nothing from this process's environment: only what was printed.
    const fromLine = loadConfig(env);
    const names = (c: typeof config) => ({
      endpoint: c.endpoint,
      region: c.region,
      tenantsTable: c.tenantsTable,
      leaseTable: c.leaseTable,
      eventBusName: c.eventBusName,
      eventSource: c.eventSource,
      namePrefix: c.namePrefix,
      poolCluster: c.poolCluster,
      advancedCluster: c.advancedCluster,
      backupBucket: c.backupBucket,
      subnets: c.subnets,
      securityGroups: c.securityGroups,
      listenerArn: c.listenerArn,
      listenerArns: c.listenerArns,
      tenantsPerListener: c.tenantsPerListener,
      vpcId: c.vpcId,
      ecsEventsQueueUrl: c.ecsEventsQueueUrl,
    });
    expect(names(fromLine)).toEqual(names(config));
    expect(fromLine.listenerArns).toEqual([LISTENER, LISTENER_2]);
    expect(env?.["LISTENER_ARNS"]).toBe(`${LISTENER},${LISTENER_2}`);
    expect(fromLine.ecsEventsQueueUrl).toBe("http://127.0.0.1:4566/123456789012/acme1-ecs-events");
    expect(env?.["AWS_ACCESS_KEY_ID"]).toBe("test");
    expect(env?.["AWS_SECRET_ACCESS_KEY"]).toBe("test");
  });

  it("quotes what a shell would split, and reads it back unchanged", () => {
    const odd = { A: "plain-1,2:3/4", B: "two words", C: "it's", D: "$HOME `x` \\ !" };
    const line = exportLine(odd);
    expect(line).toContain("B='two words'");
    expect(line).toContain("C='it'\\''s'");
    expect(parseExportLine(line)).toEqual(odd);
  });

  it("finds the line among other output, and says undefined when there is none", () => {
    expect(parseExportLine("no such line\nexporting nothing")).toBeUndefined();
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`VAR_${i}`, `value-${i}`]));
    const text = `header\n${exportLine(many)}\nfooter=ignored\n`;
    expect(text.split("\n").length).toBeGreaterThan(4);
    expect(parseExportLine(text)).toEqual(many);
  });
});

describe("tenantctl local --albs", () => {
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {} };
  it.each([
    ["0", "--albs: must be at least 1 (the pool's catch-all needs a listener)"],
    ["21", "--albs: must be at most 20 (each is a load balancer in the local AWS)"],
    ["1.5", "--albs: must be a whole number of load balancers, 1-20"],
    ["two", "--albs: must be a whole number of load balancers, 1-20"],
  ])("refuses --albs %s before starting anything", async (value, message) => {
    const run = localCommand.run(["--albs", value], io);
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow(message);
  });
});
