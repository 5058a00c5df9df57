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

describe("the listener pool: LISTENER_ARNS, LISTENER_ARN and TENANTS_PER_LISTENER", () => {
  const L1 = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/saas/abc/def";
  const L2 = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/saas-2/0a1/0b2";
  const L3 = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/saas-3/0c3/0d4";
  const { LISTENER_ARN: _single, ...withoutListener } = REQUIRED;
  const load = (env: Record<string, string>) => loadConfig({ ...withoutListener, ...env });
  const problemsOf = (env: Record<string, string>): readonly string[] => {
    try {
      load(env);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it("LISTENER_ARN alone is a pool of one; 90 tenants per listener by default", () => {
    const c = load({ LISTENER_ARN: L1 });
    expect([c.listenerArn, c.listenerArns, c.tenantsPerListener]).toEqual([L1, [L1], 90]);
  });

  it("LISTENER_ARNS is read in order, spaces and empty entries ignored; the first is listenerArn", () => {
    const c = load({ LISTENER_ARNS: ` ${L2}, ${L1},,${L3} `, TENANTS_PER_LISTENER: "40" });
    expect(c.listenerArns).toEqual([L2, L1, L3]);
    expect(c.listenerArn).toBe(L2);
    expect(c.tenantsPerListener).toBe(40);
  });

  it("both may be set while upgrading when LISTENER_ARN is the first of LISTENER_ARNS; otherwise the conflict is named", () => {
    expect(load({ LISTENER_ARN: L1, LISTENER_ARNS: `${L1},${L2}` }).listenerArns).toEqual([L1, L2]);
    expect(problemsOf({ LISTENER_ARN: L2, LISTENER_ARNS: `${L1},${L2}` })).toEqual([
      `LISTENER_ARN is ${L2} but LISTENER_ARNS starts with ${L1}: the first listener holds the pool's catch-all and the placements made before LISTENER_ARNS, so unset LISTENER_ARN or list it first in LISTENER_ARNS`,
    ]);
  });

  it("neither set: names both variables", () => {
    expect(problemsOf({})).toEqual([
      "LISTENER_ARNS is required: the ALB listener ARNs tenant rules hang off, comma-separated (or LISTENER_ARN for a single listener)",
    ]);
    expect(problemsOf({ LISTENER_ARNS: " , " })).toEqual(["LISTENER_ARNS must list at least one listener ARN"]);
  });

  it("a malformed entry, a duplicate, or two listeners of one load balancer are refused by name", () => {
    expect(problemsOf({ LISTENER_ARNS: `${L1},arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/x/1` })).toEqual([
      "LISTENER_ARNS must be ALB listener ARNs (arn:aws:elasticloadbalancing:<region>:<account>:listener/app/<name>/<id>/<id>), comma-separated",
    ]);
    expect(problemsOf({ LISTENER_ARNS: `${L1},${L2},${L1}` })).toEqual([`LISTENER_ARNS lists ${L1} twice: name each listener once`]);
    const sameAlb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/saas/abc/0f0";
    expect(problemsOf({ LISTENER_ARNS: `${L1},${sameAlb}` })[0]).toMatch(
      /^LISTENER_ARNS lists two listeners of load balancer app\/saas\/abc: an ALB holds at most 100 target groups/,
    );
    expect(problemsOf({ LISTENER_ARN: "listener-1" })[0]).toMatch(/^LISTENER_ARN must be an ALB listener ARN/);
  });

  it("TENANTS_PER_LISTENER is 1..100, and the message says why 100", () => {
    expect(problemsOf({ LISTENER_ARN: L1, TENANTS_PER_LISTENER: "101" })[0]).toMatch(
      /^TENANTS_PER_LISTENER must be at most 100: an ALB holds at most 100 target groups.*add listeners to LISTENER_ARNS instead$/,
    );
    expect(problemsOf({ LISTENER_ARN: L1, TENANTS_PER_LISTENER: "0" })).toEqual(["TENANTS_PER_LISTENER must be at least 1"]);
    expect(problemsOf({ LISTENER_ARN: L1, TENANTS_PER_LISTENER: "2.5" })).toEqual(["TENANTS_PER_LISTENER must be a whole number"]);
  });
});
