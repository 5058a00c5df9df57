import type { Tier } from "../tenants/record.js";
import { poolTableName, siloTableName } from "./naming.js";

/**
 * Where a tenant's data lives: the pooled tables (basic) or its own silo
 * tables (advanced and premium share them, so a move between those two
 * copies nothing). Pure; names are deterministic.
 */
export type DataHome = "pool" | "silo";
export type Tables = Readonly<Record<"orders" | "products", string>>;

export function homeOf(tier: Tier): DataHome {
  return tier === "basic" ? "pool" : "silo";
}

export function siloTables(prefix: string, tenantId: string): Tables {
  return { orders: siloTableName(prefix, tenantId, "orders"), products: siloTableName(prefix, tenantId, "products") };
}

export function poolTables(prefix: string): Tables {
  return { orders: poolTableName(prefix, "orders"), products: poolTableName(prefix, "products") };
}

export function tablesOf(home: DataHome, prefix: string, tenantId: string, pool: Tables): Tables {
  return home === "pool" ? pool : siloTables(prefix, tenantId);
}

export function sameTables(a: Tables | undefined, b: Tables | undefined): boolean {
  return a !== undefined && b !== undefined && a.orders === b.orders && a.products === b.products;
}

/** The home a status.tables names; undefined when it names neither (a table renamed by hand). */
export function homeOfTables(tables: Tables, prefix: string, tenantId: string, pool: Tables): DataHome | undefined {
  if (sameTables(tables, pool)) return "pool";
  if (sameTables(tables, siloTables(prefix, tenantId))) return "silo";
  return undefined;
}
