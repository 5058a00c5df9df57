/**
 * A strict parser of the Prometheus text format 0.0.4, enough to hold the
 * exposition to the rules a scraper applies: HELP and TYPE before the samples
 * of a family, one TYPE per family, sample names belonging to their family
 * (_bucket/_sum/_count for histograms), label values quoted and escaped,
 * values that are numbers. It throws on anything else.
 */
export interface Family {
  readonly type: string;
  readonly help: string;
  readonly samples: { name: string; labels: Record<string, string>; value: number }[];
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const sampleRe = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
  const labelRe = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/;
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line === "") return;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name = "", rest = ""] = meta;
      if (kind === "TYPE") {
        if (types.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) throw new Error(`${where}: bad type`);
        types.set(name, rest);
        families.set(name, { type: rest, help: helps.get(name) ?? "", samples: [] });
      } else {
        helps.set(name, rest);
      }
      return;
    }
    if (line.startsWith("#")) return;
    const m = sampleRe.exec(line);
    if (!m) throw new Error(`${where}: not a sample`);
    const [, sampleName = "", rawLabels = "", rawValue = ""] = m;
    const family = [...families.entries()].find(([name, f]) =>
      f.type === "histogram" || f.type === "summary"
        ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`].includes(sampleName)
        : name === sampleName,
    );
    if (!family) throw new Error(`${where}: sample before its TYPE`);
    const labels: Record<string, string> = {};
    let rest = rawLabels;
    while (rest.length > 0) {
      const l = labelRe.exec(rest);
      if (!l) throw new Error(`${where}: bad labels`);
      const [all, key = "", value = ""] = l;
      if (key in labels) throw new Error(`${where}: label ${key} twice`);
      labels[key] = value.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
      rest = rest.slice(all.length);
    }
    // Values as Prometheus reads them (Go's ParseFloat): NaN and Inf in any case; prom-client writes "Nan" before the first event-loop sample.
    if (!/^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf|nan)$/i.test(rawValue)) throw new Error(`${where}: bad value`);
    const value = /^nan$/i.test(rawValue)
      ? NaN
      : /inf$/i.test(rawValue)
        ? rawValue.startsWith("-")
          ? -Infinity
          : Infinity
        : Number(rawValue);
    family[1].samples.push({ name: sampleName, labels, value });
  });
  return families;
}

export function sample(
  families: Map<string, Family>,
  family: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return families
    .get(family)
    ?.samples.find(
      (s) =>
        s.name === name &&
        Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
        Object.keys(s.labels).length === Object.keys(labels).length,
    )?.value;
}
