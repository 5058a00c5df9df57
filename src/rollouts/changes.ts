import { resolveApp, type Catalogue } from "../apps/catalogue.js";
import { APP_NAMES, canonicalJson, type AppName, type AppOverride } from "../tenants/record.js";

/**
 * What moving from one catalogue to another changes for one tenant (with
 * its record's overrides) or for the pool (none): the apps whose resolved
 * settings differ. A tenant that pins an app's version is not changed by a
 * new default version of that app.
 */
export interface AppChange {
  readonly app: AppName;
  readonly from: string;
  readonly to: string;
}

export function changesFor(
  overrides: Partial<Record<AppName, AppOverride>> | undefined,
  from: Catalogue,
  to: Catalogue,
): readonly AppChange[] {
  const out: AppChange[] = [];
  for (const app of APP_NAMES) {
    const a = resolveApp(from, app, overrides?.[app]);
    const b = resolveApp(to, app, overrides?.[app]);
    if (canonicalJson(a) !== canonicalJson(b)) out.push({ app, from: a.version, to: b.version });
  }
  return out;
}

/** "orders 1.0.0 -> 1.5.0, users 1.0.0 -> 1.1.0"; an app whose version stays says what else changed. */
export function describeChanges(changes: readonly AppChange[]): string {
  if (changes.length === 0) return "no app changes";
  return changes.map((c) => (c.from === c.to ? `${c.app} ${c.to} (settings changed)` : `${c.app} ${c.from} -> ${c.to}`)).join(", ");
}

/** The default versions of a catalogue, app by app. */
export function versionsOf(catalogue: Catalogue): Readonly<Record<AppName, string>> {
  return Object.fromEntries(APP_NAMES.map((a) => [a, catalogue.apps[a].version])) as Record<AppName, string>;
}
