import { z } from "zod";
import { APP_NAMES, type AppName, type AppOverride } from "../tenants/record.js";

/**
 * The app catalogue, after the AWS SaaS Factory ECS reference architecture:
 * three HTTP services (orders, products, users on 3010) behind an nginx
 * reverse proxy (rproxy on 8080, the tenant's entry point), each 256 CPU /
 * 512 MiB on Fargate. The catalogue holds images and defaults; a tenant record
 * may override version and desiredCount per app (TenantSpec.apps).
 */

/**
 * An image reference without tag or digest: an optional registry host (with
 * port), then lowercase path components. A tag here would make
 * `<repository>:<version>` ambiguous, so it is refused.
 */
const REPOSITORY = /^(?:[A-Za-z0-9.-]+(?::\d{1,5})?\/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/;
/** Same rule as an image tag and as a record's `apps.<app>.version`. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** Fargate's task sizes for the CPU units we allow; memory must fit its CPU. */
const FARGATE_MEMORY: Readonly<Record<string, readonly number[]>> = {
  "256": [512, 1024, 2048],
  "512": [1024, 2048, 3072, 4096],
  "1024": [2048, 3072, 4096, 5120, 6144, 7168, 8192],
};

export const appSpecSchema = z
  .object({
    repository: z
      .string({ error: "repository is required and must be a string" })
      .max(255, "repository must be at most 255 characters")
      .regex(REPOSITORY, "repository must be an image name without tag, such as public.ecr.aws/saas-factory/orders"),
    version: z.string({ error: "version is required and must be a string" }).regex(TAG, "version must be a valid image tag: 1-128 of A-Z a-z 0-9 _ . - not starting with . or -"),
    desiredCount: z
      .number({ error: "desiredCount is required and must be a number" })
      .int("desiredCount must be a whole number")
      .min(0, "desiredCount must be 0 or more")
      .max(100, "desiredCount must be at most 100"),
    containerPort: z
      .number({ error: "containerPort is required and must be a number" })
      .int("containerPort must be a whole number")
      .min(1, "containerPort must be 1-65535")
      .max(65535, "containerPort must be 1-65535"),
    /** Fargate CPU units. @default "256" */
    cpu: z.enum(["256", "512", "1024"], { error: "cpu must be one of 256, 512, 1024" }).default("256"),
    /** MiB, valid for the cpu. @default "512" */
    memory: z.string({ error: "memory must be a string such as \"512\"" }).regex(/^\d+$/, "memory must be a number of MiB such as \"512\"").default("512"),
  })
  .strict()
  .superRefine((app, ctx) => {
    const allowed = FARGATE_MEMORY[app.cpu] ?? [];
    if (!allowed.includes(Number(app.memory))) {
      ctx.addIssue({ code: "custom", path: ["memory"], message: `memory must be one of ${allowed.join(", ")} for cpu ${app.cpu}` });
    }
  });

export type AppSpec = z.output<typeof appSpecSchema>;

/** Every app must be present: the tiers deploy the whole set per tenant. */
export const catalogueSchema = z
  .object({
    apps: z
      .object(Object.fromEntries(APP_NAMES.map((name) => [name, appSpecSchema])) as Record<AppName, typeof appSpecSchema>, {
        error: "apps is required and must be an object with orders, products, users and rproxy",
      })
      .strict(),
  })
  .strict();

export type Catalogue = { readonly apps: Readonly<Record<AppName, Readonly<AppSpec>>> };

const factoryApp = (name: AppName, containerPort: number): AppSpec => ({
  repository: `public.ecr.aws/saas-factory/${name}`,
  version: "1.0.0",
  desiredCount: 1,
  containerPort,
  cpu: "256",
  memory: "512",
});

export const defaultCatalogue: Catalogue = {
  apps: {
    orders: factoryApp("orders", 3010),
    products: factoryApp("products", 3010),
    users: factoryApp("users", 3010),
    rproxy: factoryApp("rproxy", 8080),
  },
};

export class CatalogueError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid app catalogue: ${problems.join("; ")}`);
    this.name = "CatalogueError";
  }
}

/**
 * Validates a catalogue given as JSON text or already-parsed data. Throws
 * CatalogueError whose problems each name the field, e.g.
 * `apps.orders.version: version must be a valid image tag ...`.
 */
export function loadCatalogue(json: unknown): Catalogue {
  let data = json;
  if (typeof json === "string") {
    try {
      data = JSON.parse(json);
    } catch (err) {
      throw new CatalogueError([`not valid JSON: ${err instanceof Error ? err.message : String(err)}`]);
    }
  }
  const parsed = catalogueSchema.safeParse(data);
  if (!parsed.success) {
    throw new CatalogueError(
      parsed.error.issues.map((issue) => {
        const path = issue.path.map(String).join(".");
        return path === "" ? issue.message : `${path}: ${issue.message}`;
      }),
    );
  }
  return parsed.data;
}

/** What one app of one tenant runs: the catalogue's defaults with the record's overrides applied. */
export interface ResolvedApp {
  readonly name: AppName;
  readonly image: string;
  readonly version: string;
  readonly desiredCount: number;
  readonly containerPort: number;
  readonly cpu: string;
  readonly memory: string;
}

export function resolveApp(catalogue: Catalogue, name: AppName, override: AppOverride | undefined): ResolvedApp {
  const app = catalogue.apps[name];
  const version = override?.version ?? app.version;
  return {
    name,
    image: imageOf(app, version),
    version,
    desiredCount: override?.desiredCount ?? app.desiredCount,
    containerPort: app.containerPort,
    cpu: app.cpu,
    memory: app.memory,
  };
}

export function imageOf(app: Pick<AppSpec, "repository">, version: string): string {
  return `${app.repository}:${version}`;
}
