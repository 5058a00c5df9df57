import { describe, expect, it } from "vitest";
import { controllerEnv, exportLine, parseExportLine } from "../../src/cli/commands/local.js";
import { loadConfig } from "../../src/config.js";

/**
 * The `export ...` line `npm start` prints is the whole contract between the
 * local AWS and a `tenantctl controller` started apart from it
 * (docs/design.md "Contract: running it"): pasted alone, it must give a
 * controller the same account, names included.
 */
const LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas-local/e8c8d7b80b71f56f/904e2125603f02f8";

describe("the local export line", () => {
  it("carries every name a controller needs, so a controller configured from it alone meets the same account", () => {
    const config = loadConfig({
      AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
      SUBNETS: "subnet-0a,subnet-0b",
      SECURITY_GROUPS: "sg-0c",
      LISTENER_ARN: LISTENER,
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
      vpcId: c.vpcId,
      ecsEventsQueueUrl: c.ecsEventsQueueUrl,
    });
    expect(names(fromLine)).toEqual(names(config));
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
