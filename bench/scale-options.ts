import { parseArgs } from "node:util";
import { z } from "zod";
import { mixOf, type Mix } from "./scale-run.js";

/** `npm run bench:scale` flags, checked with zod: a bad one names itself and its fix. */
export const SCALE_USAGE = `usage: npm run bench:scale -- [options]
  --tenants N          tenants in the fleet (default 10000; --quick: 300)
  --controllers LIST   controller counts to run, each in its own process, e.g. 1,3 (default 1,3)
  --controller-process ONE controller in a child process of its own, the fakes in this one, every port call
                       forwarded over IPC: the RSS of the controller alone (bench/scale-split.ts); onboarding and
                       one resync pass only; its CPU figures include the IPC
  --compiled           with --controller-process: run the controller process from tsc's output without tsx, as the
                       image runs dist/ (compiled into a temporary directory first)
  --basic W            tier weights, or counts when they sum to --tenants (default 6 / 3 / 1)
  --advanced W
  --premium W
  --concurrency N      workers per controller, CONCURRENCY (default 8)
  --lease-seconds N    LEASE_SECONDS: shard balancing rounds (1/3 of it) and how long a killed controller's leases hold (default 15)
  --throttle           enforce ECS's documented buckets on the fake (then the figures are the buckets')
  --log-level LEVEL    the controllers' pino level, written to /dev/null (default info)
  --timeout-s N        give up on a phase after N seconds (default 1800)
  --cpu-profile DIR    write a V8 CPU profile of each phase to DIR (onboarding-<N>c.cpuprofile, resync-<N>c.cpuprofile)
  --quick              300 tenants
  --json               the results as JSON on stdout (progress on stderr)
  --markdown           the results as the BENCHMARKS.md tables
  --help`;

const count = (flag: string, min: number, max: number) =>
  z.coerce
    .number({ error: `${flag} must be a number` })
    .int(`${flag} must be a whole number`)
    .min(min, `${flag} must be at least ${min}`)
    .max(max, `${flag} must be at most ${max}`);

const weight = (flag: string) =>
  z.coerce.number({ error: `${flag} must be a number` }).min(0, `${flag} must be 0 or more (a weight or a count of tenants)`);

const schema = z
  .object({
    tenants: count("--tenants", 1, 100_000).optional(),
    controllers: z
      .string()
      .regex(/^\d+(,\d+)*$/, "--controllers must be a count or a comma-separated list of counts, such as 3 or 1,3")
      .transform((s) => s.split(",").map(Number))
      .refine((l) => l.every((n) => n >= 1 && n <= 16), "--controllers counts must be between 1 and 16")
      .optional(),
    basic: weight("--basic"),
    advanced: weight("--advanced"),
    premium: weight("--premium"),
    concurrency: count("--concurrency", 1, 256),
    "lease-seconds": count("--lease-seconds", 1, 600),
    throttle: z.boolean(),
    "log-level": z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
      error: "--log-level must be one of trace, debug, info, warn, error, fatal, silent",
    }),
    "timeout-s": count("--timeout-s", 1, 86_400),
    "cpu-profile": z.string().min(1, "--cpu-profile needs a directory").optional(),
    "controller-process": z.boolean(),
    compiled: z.boolean(),
    quick: z.boolean(),
    json: z.boolean(),
    markdown: z.boolean(),
    help: z.boolean(),
  })
  .refine((o) => o.basic + o.advanced + o.premium > 0, { message: "--basic, --advanced and --premium must not all be 0" })
  .refine((o) => !o["controller-process"] || o.controllers === undefined || o.controllers.join(",") === "1", {
    message: "--controller-process runs exactly one controller: leave out --controllers (or give 1)",
  })
  .refine((o) => !o.compiled || o["controller-process"], { message: "--compiled applies to --controller-process: add it" })
  .refine((o) => !o["controller-process"] || o["cpu-profile"] === undefined, {
    message: "--cpu-profile profiles the in-process run only: leave it out with --controller-process",
  });

export interface ScaleArgs {
  readonly tenants: number;
  readonly mix: Mix;
  readonly controllers: readonly number[];
  readonly concurrency: number;
  readonly leaseSeconds: number;
  readonly throttle: boolean;
  readonly logLevel: string;
  readonly timeoutMs: number;
  readonly cpuProfileDir: string | undefined;
  /** One controller in a process of its own (bench/scale-split.ts). */
  readonly controllerProcess: boolean;
  /** With controllerProcess: the child runs tsc's output, without tsx. */
  readonly compiled: boolean;
  readonly json: boolean;
  readonly markdown: boolean;
  readonly help: boolean;
}

/** Parses argv; throws an Error whose message names the bad flag. */
export function parseScaleArgs(argv: readonly string[]): ScaleArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      tenants: { type: "string" },
      controllers: { type: "string" },
      basic: { type: "string", default: "6" },
      advanced: { type: "string", default: "3" },
      premium: { type: "string", default: "1" },
      concurrency: { type: "string", default: "8" },
      "lease-seconds": { type: "string", default: "15" },
      throttle: { type: "boolean", default: false },
      "log-level": { type: "string", default: "info" },
      "timeout-s": { type: "string", default: "1800" },
      "cpu-profile": { type: "string" },
      "controller-process": { type: "boolean", default: false },
      compiled: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      markdown: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  const parsed = schema.safeParse(values);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => i.message).join("; "));
  const o = parsed.data;
  const tenants = o.tenants ?? (o.quick ? 300 : 10_000);
  const weights = { basic: o.basic, advanced: o.advanced, premium: o.premium };
  return {
    tenants,
    mix: mixOf(tenants, weights),
    controllers: o.controllers ?? (o["controller-process"] ? [1] : [1, 3]),
    concurrency: o.concurrency,
    leaseSeconds: o["lease-seconds"],
    throttle: o.throttle,
    logLevel: o["log-level"],
    timeoutMs: o["timeout-s"] * 1000,
    cpuProfileDir: o["cpu-profile"],
    controllerProcess: o["controller-process"],
    compiled: o.compiled,
    json: o.json,
    markdown: o.markdown,
    help: o.help,
  };
}
