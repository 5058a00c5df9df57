import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const REQUIRED = {
  SUBNETS: "subnet-0a,subnet-0b",
  SECURITY_GROUPS: "sg-0a",
  LISTENER_ARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/saas/abc/def",
  VPC_ID: "vpc-0abc",
};

/** The ConfigError's lines for an environment, or [] when it loads. */
function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ ...REQUIRED, ...env });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe("the settings the deploy template sets", () => {
  it("defaults: no CloudFormation service role, no public IP, the stream found from the table", () => {
    const c = loadConfig(REQUIRED);
    expect(c.cfnRoleArn).toBeUndefined();
    expect(c.assignPublicIp).toBe("DISABLED");
    expect(c.tenantsStreamArn).toBeUndefined();
  });

  it("reads CFN_ROLE_ARN, ASSIGN_PUBLIC_IP and TENANTS_STREAM_ARN", () => {
    const stream = "arn:aws:dynamodb:eu-west-1:123456789012:table/TenantDetails/stream/2026-01-01T00:00:00.000";
    const c = loadConfig({
      ...REQUIRED,
      TENANTS_TABLE: "TenantDetails",
      CFN_ROLE_ARN: "arn:aws:iam::123456789012:role/ecs-tenant-operator/saas-cfn-1A2B",
      ASSIGN_PUBLIC_IP: "ENABLED",
      TENANTS_STREAM_ARN: stream,
    });
    expect(c.cfnRoleArn).toBe("arn:aws:iam::123456789012:role/ecs-tenant-operator/saas-cfn-1A2B");
    expect(c.assignPublicIp).toBe("ENABLED");
    expect(c.tenantsStreamArn).toBe(stream);
  });

  it("an empty value means unset, as for every variable (the template passes empty optional parameters)", () => {
    const c = loadConfig({ ...REQUIRED, CFN_ROLE_ARN: "", ASSIGN_PUBLIC_IP: "", TENANTS_STREAM_ARN: "" });
    expect([c.cfnRoleArn, c.assignPublicIp, c.tenantsStreamArn]).toEqual([undefined, "DISABLED", undefined]);
  });

  it("names the variable and the fix for each bad value", () => {
    expect(problems({ CFN_ROLE_ARN: "saas-cfn" })).toEqual([
      "CFN_ROLE_ARN must be an IAM role ARN such as arn:aws:iam::123456789012:role/ecs-tenant-operator/cfn",
    ]);
    expect(problems({ ASSIGN_PUBLIC_IP: "yes" })).toEqual(["ASSIGN_PUBLIC_IP must be ENABLED or DISABLED"]);
    expect(problems({ TENANTS_STREAM_ARN: "arn:aws:dynamodb:eu-west-1:123456789012:table/tenants" })[0]).toMatch(
      /^TENANTS_STREAM_ARN must be a DynamoDB stream ARN/,
    );
  });

  it("refuses a stream of another table than TENANTS_TABLE, naming both", () => {
    const other = "arn:aws:dynamodb:eu-west-1:123456789012:table/other/stream/2026-01-01T00:00:00.000";
    expect(problems({ TENANTS_STREAM_ARN: other })).toEqual([
      "TENANTS_STREAM_ARN is the stream of table other, but TENANTS_TABLE is tenants: give the stream of tenants, or unset TENANTS_STREAM_ARN",
    ]);
  });
});
