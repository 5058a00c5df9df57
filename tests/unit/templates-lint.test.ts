import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { poolStackTemplate } from "../../src/tiers/pool-template.js";
import { tenantStackTemplate } from "../../src/tiers/stack-template.js";
import { CFN_LINT_INSTALL_HINT as INSTALL_HINT, lintAll, readableFindings } from "../support/cfn-lint.js";

/**
 * Every generated template, exactly as sent (templateBody), through cfn-lint
 * with informational and experimental rules on: zero findings of any level.
 * cfn-lint knows the resource schemas, the IAM policy grammar and rules such
 * as I3011 (stateful resources need explicit deletion policies) that moto
 * never checks. A false positive is suppressed in the template's Metadata
 * (cfn-lint config) with its reason, never by changing the resource.
 */

const lint = lintAll;

const UUID = "3f2a9c1e-7b4d-4e2a-9f1c-0a1b2c3d4e5f";
const VPC = "vpc-0123456789abcdef0";
const LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/saas/abc/def";

/** The templates to lint, named; the longest prefix and a 64-character id push every name to its limit. */
const TEMPLATES: Readonly<Record<string, string>> = {
  "tenant-uuid-advanced": tenantStackTemplate({ tenantId: UUID, tier: "advanced", namePrefix: "saas", vpcId: VPC }).templateBody,
  "tenant-longest-premium": tenantStackTemplate({
    tenantId: `9${"a_".repeat(31)}B`,
    tier: "premium",
    namePrefix: "abcdefghij",
    vpcId: VPC,
    logRetentionDays: 3653,
  }).templateBody,
  "pool-saas": poolStackTemplate({ namePrefix: "saas", listenerArn: LISTENER, vpcId: VPC }).templateBody,
  "pool-longest": poolStackTemplate({ namePrefix: "abcdefghij", listenerArn: LISTENER, vpcId: VPC, logRetentionDays: 1 }).templateBody,
};

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "templates-lint-"));
  for (const [name, body] of Object.entries(TEMPLATES)) await writeFile(join(dir, `${name}.json`), body, "utf8");
});

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("generated CloudFormation templates pass cfn-lint", () => {
  it("cfn-lint is installed", async () => {
    const version = await new Promise<string>((resolve, reject) =>
      execFile("cfn-lint", ["--version"], (err, stdout) => {
        if (err && (err as NodeJS.ErrnoException).code === "ENOENT") return reject(new Error(INSTALL_HINT));
        if (err) return reject(new Error(`cfn-lint --version failed: ${err.message}. ${INSTALL_HINT}`));
        resolve(stdout.trim());
      }),
    );
    expect(version).toMatch(/^cfn-lint \d+\./);
  });

  it("tenant and pool templates: exit code 0 and no finding of any level", async () => {
    const run = await lint(Object.keys(TEMPLATES).map((name) => join(dir, `${name}.json`)));
    expect(readableFindings(run, dir)).toEqual([]);
    expect(run.code, run.stderr).toBe(0);
  });

  it("the run would see a finding: a table without its deletion policies is reported", async () => {
    // Guards the test above against passing vacuously (rules off, files skipped).
    const template = JSON.parse(TEMPLATES["pool-saas"]!) as { Resources: Record<string, Record<string, unknown>> };
    delete template.Resources["OrdersTable"]!["DeletionPolicy"];
    delete template.Resources["OrdersTable"]!["UpdateReplacePolicy"];
    const file = join(dir, "control.json");
    await writeFile(file, JSON.stringify(template), "utf8");
    const run = await lint([file]);
    expect(run.findings.map((f) => f.Rule.Id)).toContain("I3011");
    expect(run.code).not.toBe(0);
  });
});
