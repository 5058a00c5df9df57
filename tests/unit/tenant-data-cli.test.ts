import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/command.js";
import { formatRestored, parseRestoreArgs, tablesOf } from "../../src/cli/commands/restore.js";

describe("tenantctl restore: arguments", () => {
  it("reads the tenant and the location, adding the prefix's trailing slash", () => {
    expect(parseRestoreArgs(["t1", "--from", "s3://backups/tenants/t1"])).toEqual({
      tenantId: "t1",
      from: { bucket: "backups", prefix: "tenants/t1/" },
      output: "text",
    });
    expect(parseRestoreArgs(["t1", "--from=s3://backups/x/", "-o", "json"])).toMatchObject({ output: "json" });
  });

  it.each([
    { reason: "no --from", args: ["t1"], match: /^--from: required: the export's location, s3:\/\/bucket\/prefix\/$/ },
    { reason: "a location that is not S3", args: ["t1", "--from", "/tmp/backup"], match: /^--from: "\/tmp\/backup" is not an S3 location/ },
    { reason: "no tenant", args: ["--from", "s3://bkt/x/"], match: /missing tenant ID/ },
    { reason: "a bad tenant id", args: ["bad id", "--from", "s3://bkt/x/"], match: /invalid tenant ID "bad id"/ },
    { reason: "an unknown flag", args: ["t1", "--from", "s3://bkt/x/", "--force"], match: /--force/ },
    { reason: "a bad output format", args: ["t1", "--from", "s3://bkt/x/", "-o", "xml"], match: /--output: must be text, json or yaml/ },
  ])("refuses $reason with a usage error", ({ args, match }) => {
    expect(() => parseRestoreArgs(args)).toThrow(UsageError);
    expect(() => parseRestoreArgs(args)).toThrow(match);
  });
});

describe("tenantctl restore: the tenant's tables", () => {
  it.each([
    { reason: "no status yet", item: { tenantId: "t1" }, match: /^tenant\/t1 has no status\.tables: .*nothing was restored$/ },
    { reason: "a status without tables", item: { tenantId: "t1", status: { phase: "Provisioning" } }, match: /has no status\.tables/ },
    {
      reason: "tables missing an app",
      item: { tenantId: "t1", status: { tables: { orders: "o" } } },
      match: /malformed status\.tables .*products/,
    },
  ])("says so clearly when the record has $reason", ({ item, match }) => {
    const r = tablesOf(item, "t1");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(match);
  });

  it("takes status.tables as they are", () => {
    expect(tablesOf({ status: { tables: { orders: "pool-orders", products: "pool-products" } } }, "t1")).toEqual({
      ok: true,
      tables: { orders: "pool-orders", products: "pool-products" },
    });
  });

  it("prints counts per table", () => {
    const text = formatRestored(
      "t1",
      { bucket: "b", prefix: "x/" },
      { orders: "o-t", products: "p-t" },
      { orders: 12, products: 3 },
      "text",
    );
    expect(text).toMatch(/^restored tenant\/t1 from s3:\/\/b\/x\/\n/);
    expect(text).toMatch(/orders\s+o-t\s+12/);
    expect(text).toMatch(/products\s+p-t\s+3/);
    expect(
      JSON.parse(
        formatRestored("t1", { bucket: "b", prefix: "x/" }, { orders: "o-t", products: "p-t" }, { orders: 12, products: 3 }, "json"),
      ),
    ).toEqual({
      tenantId: "t1",
      from: "s3://b/x/",
      tables: { orders: { table: "o-t", items: 12 }, products: { table: "p-t", items: 3 } },
    });
  });
});
