import type { TenantStore } from "../ports.js";
import type { TenantStatus } from "../tenants/status.js";
import { display, renderTable } from "./format.js";

/**
 * The local default's screen: a compact table of tenants by phase, printed
 * again only when something in it changed, so it reads well in a terminal and
 * in a CI log alike.
 */
export function startLiveView(store: TenantStore, out: NodeJS.WritableStream, everyMs = 1000): { stop(): void } {
  let last = "";
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const rows: string[][] = [];
      for await (const page of store.scan()) {
        for (const item of page) {
          const status = item["status"] as Partial<TenantStatus> | undefined;
          rows.push([
            String(item["tenantId"]),
            display(item["tier"] ?? "?").toLowerCase(),
            status?.phase ?? "Pending",
            (status?.message ?? "").slice(0, 70),
          ]);
        }
      }
      rows.sort((a, b) => (a[0] ?? "").localeCompare(b[0] ?? ""));
      const text = renderTable(["TENANT", "TIER", "PHASE", "MESSAGE"], rows);
      if (text !== last) {
        last = text;
        const byPhase = new Map<string, number>();
        for (const r of rows) byPhase.set(r[2] ?? "", (byPhase.get(r[2] ?? "") ?? 0) + 1);
        const summary = [...byPhase].map(([p, n]) => `${n} ${p}`).join(", ") || "no tenants";
        out.write(`\n── tenants (${summary}) ${new Date().toISOString().slice(11, 19)}\n${text}\n`);
      }
    } catch {
      /* the table may not exist yet or the cloud is stopping; the next tick tries again */
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), everyMs);
  void tick();
  return { stop: () => clearInterval(timer) };
}
