import { z } from "zod";
import { DATA_APPS, type DataApp } from "../ports.js";
import { APP_NAMES, type AppName, type AppOverride } from "../tenants/record.js";

/**
 * The app catalogue, after the AWS SaaS Factory ECS reference architecture:
 * three HTTP services (orders, products, users on 3010) behind an nginx
 * reverse proxy (rproxy on 8080, the tenant's entry point), each 256 CPU /
 * 512 MiB on Fargate. The catalogue holds images and defaults; a tenant record
 * may override version and desiredCount per app (TenantSpec.apps).
 *
 * Each app also says what its image expects of the platform, so an image
 * other than the reference's can say what it needs: how it joins Service
 * Connect, which table is its TABLE_NAME, and which of the standard
 * environment variables it reads. Omitted, these default to what the
 * reference images read (server/application in the reference repository):
 * every container gets AWS_REGION, AWS_ACCOUNT_ID and COGNITO_*; orders and
 * products add their TABLE_NAME and the token-vending variables
 * (IAM_ROLE_ARN, REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES, IDP_DETAILS); rproxy's
 * nginx template reads NAMESPACE to reach `<app>-api.<NAMESPACE>.sc:3010`.
 */

/** The variables the platform knows how to fill (src/tiers/desired.ts gives their values). */
export const APP_ENVIRONMENT_NAMES = [
  "TABLE_NAME",
  "COGNITO_USER_POOL_ID",
  "COGNITO_CLIENT_ID",
  "COGNITO_REGION",
  "AWS_REGION",
  "AWS_ACCOUNT_ID",
  "IAM_ROLE_ARN",
  "REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES",
  "IDP_DETAILS",
  "NAMESPACE",
] as const;
export type AppEnvironmentName = (typeof APP_ENVIRONMENT_NAMES)[number];

/**
 * How an app joins its tenant's Service Connect namespace: as a server other
 * apps reach at `<discoveryName>.<namespace>.sc:<containerPort>`, or as a
 * client only (it calls the others and is reached through the load balancer).
 */
export type ServiceConnectRole = { readonly discoveryName: string } | "client";

/** Which of the tenant's tables the app's TABLE_NAME names, or none. */
export type AppStorage = DataApp | "none";

/** What the reference images read: the defaults for the fields above. */
const REFERENCE_BASE: readonly AppEnvironmentName[] = [
  "AWS_REGION",
  "AWS_ACCOUNT_ID",
  "COGNITO_USER_POOL_ID",
  "COGNITO_CLIENT_ID",
  "COGNITO_REGION",
];
const TOKEN_VENDING: readonly AppEnvironmentName[] = ["IAM_ROLE_ARN", "REQUEST_TAG_KEYS_MAPPING_ATTRIBUTES", "IDP_DETAILS"];
export const REFERENCE_APP_SETTINGS: Readonly<
  Record<
    AppName,
    { readonly serviceConnect: ServiceConnectRole; readonly storage: AppStorage; readonly environment: readonly AppEnvironmentName[] }
  >
> = {
  orders: {
    serviceConnect: { discoveryName: "orders-api" },
    storage: "orders",
    environment: [...REFERENCE_BASE, "TABLE_NAME", ...TOKEN_VENDING],
  },
  products: {
    serviceConnect: { discoveryName: "products-api" },
    storage: "products",
    environment: [...REFERENCE_BASE, "TABLE_NAME", ...TOKEN_VENDING],
  },
  users: { serviceConnect: { discoveryName: "users-api" }, storage: "none", environment: [...REFERENCE_BASE] },
  rproxy: { serviceConnect: "client", storage: "none", environment: [...REFERENCE_BASE, "NAMESPACE"] },
};

/** ECS's rule for a Service Connect discovery name (and a DNS label, as it becomes one). */
const DISCOVERY_NAME = /^[a-z0-9_][a-z0-9_-]{0,62}$/;

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

const serviceConnectSchema = z.union(
  [
    z.literal("client"),
    z
      .object({
        discoveryName: z
          .string({ error: "discoveryName must be a string" })
          .regex(DISCOVERY_NAME, "discoveryName must be 1-63 of a-z 0-9 _ - not starting with -"),
      })
      .strict(),
  ],
  { error: 'serviceConnect must be "client" or { "discoveryName": "..." }' },
);

/** One app's schema; the fields added after the first catalogues default per app, so older files still load. */
function appSpecSchemaFor(name: AppName) {
  const reference = REFERENCE_APP_SETTINGS[name];
  return z
    .object({
      repository: z
        .string({ error: "repository is required and must be a string" })
        .max(255, "repository must be at most 255 characters")
        .regex(REPOSITORY, "repository must be an image name without tag, such as public.ecr.aws/saas-factory/orders"),
      version: z
        .string({ error: "version is required and must be a string" })
        .regex(TAG, "version must be a valid image tag: 1-128 of A-Z a-z 0-9 _ . - not starting with . or -"),
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
      memory: z
        .string({ error: 'memory must be a string such as "512"' })
        .regex(/^\d+$/, 'memory must be a number of MiB such as "512"')
        .default("512"),
      /** @default the reference image's role (see REFERENCE_APP_SETTINGS) */
      serviceConnect: serviceConnectSchema.default(reference.serviceConnect),
      /** @default the reference image's table, or "none" */
      storage: z.enum([...DATA_APPS, "none"], { error: "storage must be one of orders, products, none" }).default(reference.storage),
      /** @default what the reference image reads */
      environment: z
        .array(z.enum(APP_ENVIRONMENT_NAMES, { error: `environment entries must be among ${APP_ENVIRONMENT_NAMES.join(", ")}` }), {
          error: "environment must be a list of variable names",
        })
        .default([...reference.environment]),
    })
    .strict()
    .superRefine((app, ctx) => {
      if (new Set(app.environment).size !== app.environment.length)
        ctx.addIssue({ code: "custom", path: ["environment"], message: "environment must not name a variable twice" });
      if (app.environment.includes("TABLE_NAME") && app.storage === "none")
        ctx.addIssue({ code: "custom", path: ["environment"], message: "TABLE_NAME needs a storage (orders or products)" });
      const allowed = FARGATE_MEMORY[app.cpu] ?? [];
      if (!allowed.includes(Number(app.memory))) {
        ctx.addIssue({ code: "custom", path: ["memory"], message: `memory must be one of ${allowed.join(", ")} for cpu ${app.cpu}` });
      }
    });
}

export type AppSpec = z.output<ReturnType<typeof appSpecSchemaFor>>;

/** Every app must be present: the tiers deploy the whole set per tenant. */
export const catalogueSchema = z
  .object({
    apps: z
      .object(
        Object.fromEntries(APP_NAMES.map((name) => [name, appSpecSchemaFor(name)])) as Record<AppName, ReturnType<typeof appSpecSchemaFor>>,
        {
          error: "apps is required and must be an object with orders, products, users and rproxy",
        },
      )
      .strict(),
  })
  .strict()
  .superRefine((catalogue, ctx) => {
    // Two servers under one discovery name would shadow each other in every namespace.
    const seen = new Map<string, AppName>();
    for (const name of APP_NAMES) {
      const role = catalogue.apps[name].serviceConnect;
      if (role === "client") continue;
      const other = seen.get(role.discoveryName);
      if (other !== undefined)
        ctx.addIssue({
          code: "custom",
          path: ["apps", name, "serviceConnect", "discoveryName"],
          message: `discoveryName ${role.discoveryName} is already ${other}'s`,
        });
      seen.set(role.discoveryName, name);
    }
  });

export type Catalogue = { readonly apps: Readonly<Record<AppName, Readonly<AppSpec>>> };

const factoryApp = (name: AppName, containerPort: number): AppSpec => ({
  repository: `public.ecr.aws/saas-factory/${name}`,
  version: "1.0.0",
  desiredCount: 1,
  containerPort,
  cpu: "256",
  memory: "512",
  serviceConnect: REFERENCE_APP_SETTINGS[name].serviceConnect,
  storage: REFERENCE_APP_SETTINGS[name].storage,
  environment: [...REFERENCE_APP_SETTINGS[name].environment],
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
  readonly serviceConnect: ServiceConnectRole;
  readonly storage: AppStorage;
  readonly environment: readonly AppEnvironmentName[];
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
    serviceConnect: app.serviceConnect,
    storage: app.storage,
    environment: app.environment,
  };
}

export function imageOf(app: Pick<AppSpec, "repository">, version: string): string {
  return `${app.repository}:${version}`;
}
