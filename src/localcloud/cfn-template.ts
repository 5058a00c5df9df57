import { parseDocument, type CollectionTag, type ScalarTag } from "yaml";

/**
 * Just enough of CloudFormation's template language for the local cloud to
 * create what moto's CloudFormation skips or flattens (cloudformation-gaps.ts),
 * and for tests to read deploy/operator.yaml: templates in JSON or YAML with
 * the short-form tags (!Ref, !Sub, !If ...), parameters with their defaults,
 * conditions, and the intrinsic functions those templates use. Anything else
 * is refused with an error naming it, so a gap is never filled with a guess.
 */

export interface CfnResource {
  readonly Type: string;
  readonly Condition?: string;
  readonly Properties?: Readonly<Record<string, unknown>>;
  readonly DeletionPolicy?: string;
}

export interface CfnParameter {
  readonly Type: string;
  readonly Default?: unknown;
}

export interface CfnTemplate {
  readonly Parameters?: Readonly<Record<string, CfnParameter>>;
  readonly Conditions?: Readonly<Record<string, unknown>>;
  readonly Resources: Readonly<Record<string, CfnResource>>;
  readonly Outputs?: Readonly<Record<string, unknown>>;
}

/** The short forms CloudFormation's YAML accepts, and the long form each stands for. */
const SHORT_FORMS = [
  "Ref",
  "Condition",
  "Sub",
  "If",
  "Equals",
  "Not",
  "And",
  "Or",
  "GetAtt",
  "Join",
  "Select",
  "Split",
  "FindInMap",
  "Base64",
  "Cidr",
  "GetAZs",
  "ImportValue",
] as const;

function longForm(name: (typeof SHORT_FORMS)[number], value: unknown): Record<string, unknown> {
  if (name === "Ref" || name === "Condition") return { [name]: value };
  // `!GetAtt Resource.Attribute` is the scalar form of ["Resource", "Attribute"].
  if (name === "GetAtt" && typeof value === "string") {
    const dot = value.indexOf(".");
    return { "Fn::GetAtt": [value.slice(0, dot), value.slice(dot + 1)] };
  }
  return { [`Fn::${name}`]: value };
}

const yamlTags: (ScalarTag | CollectionTag)[] = SHORT_FORMS.flatMap((name) => [
  { tag: `!${name}`, resolve: (value: string) => longForm(name, value) } satisfies ScalarTag,
  { tag: `!${name}`, collection: "seq", resolve: (seq) => longForm(name, seq.toJSON()) } satisfies CollectionTag,
  { tag: `!${name}`, collection: "map", resolve: (map) => longForm(name, map.toJSON()) } satisfies CollectionTag,
]);

/** Parses a template body, JSON or YAML; throws on a body that is neither, or has no Resources. */
export function parseTemplate(body: string): CfnTemplate {
  const trimmed = body.trimStart();
  let parsed: unknown;
  if (trimmed.startsWith("{")) {
    parsed = JSON.parse(body);
  } else {
    const doc = parseDocument(body, { customTags: yamlTags });
    if (doc.errors.length > 0) throw new Error(`template is not valid YAML: ${doc.errors[0]?.message ?? ""}`);
    parsed = doc.toJS();
  }
  if (parsed === null || typeof parsed !== "object" || typeof (parsed as { Resources?: unknown }).Resources !== "object") {
    throw new Error("template has no Resources");
  }
  return parsed as CfnTemplate;
}

/** What Ref, Fn::Sub and Fn::GetAtt resolve against. */
export interface ResolveContext {
  /** Parameter values (list types as arrays) and pseudo parameters (AWS::Region, ...). */
  readonly refs: Readonly<Record<string, string | readonly string[]>>;
  /** Resources by logical id: Ref gives the physical id; absent for resources not created (false condition). */
  readonly resources: Readonly<Record<string, string>>;
  readonly conditions: Readonly<Record<string, boolean>>;
  /** Fn::GetAtt; undefined when the attribute is not known, which is an error. */
  readonly attribute?: (logicalId: string, attribute: string) => string | undefined;
}

/** What AWS::NoValue resolves to: the property (or list item) is left out. */
export const NO_VALUE: unique symbol = Symbol("AWS::NoValue");

export class UnsupportedTemplateError extends Error {
  constructor(message: string) {
    super(`the local cloud cannot read this template: ${message}`);
    this.name = "UnsupportedTemplateError";
  }
}

/**
 * Parameter values as CloudFormation resolves them: the given value, else
 * the default; list types split on commas. A parameter with neither is an error.
 */
export function parameterValues(
  template: CfnTemplate,
  given: Readonly<Record<string, string>>,
): Record<string, string | readonly string[]> {
  const out: Record<string, string | readonly string[]> = {};
  for (const [name, p] of Object.entries(template.Parameters ?? {})) {
    const raw = given[name] ?? defaultOf(p.Default);
    if (raw === undefined) throw new UnsupportedTemplateError(`parameter ${name} has no value and no default`);
    out[name] = p.Type.startsWith("List<") || p.Type === "CommaDelimitedList" ? (raw === "" ? [] : raw.split(",")) : raw;
  }
  return out;
}

/** Every condition of the template, evaluated (conditions may refer to each other). */
export function evaluateConditions(
  template: CfnTemplate,
  refs: Readonly<Record<string, string | readonly string[]>>,
): Record<string, boolean> {
  const definitions = template.Conditions ?? {};
  const done: Record<string, boolean> = {};
  const visiting = new Set<string>();
  const condition = (name: string): boolean => {
    const known = done[name];
    if (known !== undefined) return known;
    if (!(name in definitions)) throw new UnsupportedTemplateError(`condition ${name} is not defined`);
    if (visiting.has(name)) throw new UnsupportedTemplateError(`condition ${name} refers to itself`);
    visiting.add(name);
    const value = truth(definitions[name]);
    visiting.delete(name);
    done[name] = value;
    return value;
  };
  const plain: ResolveContext = { refs, resources: {}, conditions: {} };
  const truth = (expr: unknown): boolean => {
    const [fn, args] = single(expr);
    const list = Array.isArray(args) ? (args as unknown[]) : [];
    switch (fn) {
      case "Condition":
        return condition(String(args));
      case "Fn::Equals":
        return String(scalar(resolve(list[0], plain))) === String(scalar(resolve(list[1], plain)));
      case "Fn::Not":
        return !truth(list[0]);
      case "Fn::And":
        return list.every(truth);
      case "Fn::Or":
        return list.some(truth);
      default:
        throw new UnsupportedTemplateError(`condition function ${fn}`);
    }
  };
  for (const name of Object.keys(definitions)) condition(name);
  return done;
}

/** Resolves every intrinsic function in a value; NO_VALUE where the value is AWS::NoValue. */
export function resolve(value: unknown, ctx: ResolveContext): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(v, ctx)).filter((v) => v !== NO_VALUE);
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>);
  const first = entries[0];
  if (entries.length === 1 && first !== undefined && (first[0] === "Ref" || first[0].startsWith("Fn::"))) {
    return intrinsic(first[0], first[1], ctx);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    const r = resolve(v, ctx);
    if (r !== NO_VALUE) out[k] = r;
  }
  return out;
}

function intrinsic(fn: string, args: unknown, ctx: ResolveContext): unknown {
  const list = Array.isArray(args) ? (args as unknown[]) : [];
  switch (fn) {
    case "Ref":
      return ref(String(args), ctx);
    case "Fn::If": {
      const [name, then, otherwise] = list;
      const holds = ctx.conditions[String(name)];
      if (holds === undefined) throw new UnsupportedTemplateError(`Fn::If on unknown condition ${String(name)}`);
      return resolve(holds ? then : otherwise, ctx);
    }
    case "Fn::Sub":
      return typeof args === "string"
        ? substitute(args, {}, ctx)
        : substitute(String(list[0]), (resolve(list[1] ?? {}, ctx) ?? {}) as Record<string, unknown>, ctx);
    case "Fn::Join": {
      const parts = resolve(list[1], ctx);
      if (!Array.isArray(parts)) throw new UnsupportedTemplateError("Fn::Join of something that is not a list");
      return parts.map((p) => String(scalar(p))).join(String(list[0]));
    }
    case "Fn::Split":
      return String(scalar(resolve(list[1], ctx))).split(String(list[0]));
    case "Fn::Select": {
      const items = resolve(list[1], ctx);
      const index = Number(scalar(resolve(list[0], ctx)));
      if (!Array.isArray(items) || items[index] === undefined) throw new UnsupportedTemplateError(`Fn::Select ${index} out of range`);
      return items[index] as unknown;
    }
    case "Fn::GetAtt": {
      const [id, attribute] = list.map((x) => String(x));
      const got = id !== undefined && attribute !== undefined ? ctx.attribute?.(id, attribute) : undefined;
      if (got === undefined) throw new UnsupportedTemplateError(`Fn::GetAtt ${String(id)}.${String(attribute)}`);
      return got;
    }
    default:
      throw new UnsupportedTemplateError(`intrinsic function ${fn}`);
  }
}

function ref(name: string, ctx: ResolveContext): unknown {
  if (name === "AWS::NoValue") return NO_VALUE;
  const param = ctx.refs[name];
  if (param !== undefined) return param;
  const physical = ctx.resources[name];
  if (physical !== undefined) return physical;
  throw new UnsupportedTemplateError(`Ref ${name}: no such parameter, or the resource was not created`);
}

/** Fn::Sub: ${Name} is a Ref (or a variable), ${Id.Attr} a GetAtt, ${!Literal} stays as ${Literal}. */
function substitute(text: string, vars: Readonly<Record<string, unknown>>, ctx: ResolveContext): string {
  return text.replace(/\$\{([^}]*)\}/g, (_, inner: string) => {
    if (inner.startsWith("!")) return `\${${inner.slice(1)}}`;
    if (inner in vars) return String(scalar(vars[inner]));
    const dot = inner.indexOf(".");
    if (dot > 0 && !inner.startsWith("AWS::")) return String(intrinsic("Fn::GetAtt", [inner.slice(0, dot), inner.slice(dot + 1)], ctx));
    return String(scalar(ref(inner, ctx)));
  });
}

function defaultOf(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => String(scalar(v))).join(",");
  return String(scalar(value));
}

function scalar(value: unknown): string | number | boolean {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  throw new UnsupportedTemplateError(`a list or object where a single value belongs: ${JSON.stringify(value)}`);
}

function single(expr: unknown): [string, unknown] {
  const entries = expr !== null && typeof expr === "object" ? Object.entries(expr as Record<string, unknown>) : [];
  const first = entries[0];
  if (entries.length !== 1 || first === undefined) throw new UnsupportedTemplateError(`condition ${JSON.stringify(expr)}`);
  return first;
}
