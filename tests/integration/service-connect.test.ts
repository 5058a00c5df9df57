import { DescribeServicesCommand, DescribeTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import {
  CreateHttpNamespaceCommand,
  ListNamespacesCommand,
  ListTagsForResourceCommand,
  ServiceDiscoveryClient,
} from "@aws-sdk/client-servicediscovery";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultCatalogue } from "../../src/apps/catalogue.js";
import { localTarget } from "../../src/localcloud/index.js";
import { UnmanagedResourceError, type Fence } from "../../src/ports.js";
import { CloudMapNamespaces } from "../../src/providers/cloudmap-namespaces.js";
import { EcsProvider } from "../../src/providers/ecs.js";
import { tenantRecordSchema } from "../../src/tenants/record.js";
import { desiredForTenant, footprintForTenant, tenantNamespaceName, type TierSettings } from "../../src/tiers/desired.js";
import { diff } from "../../src/tiers/diff.js";
import type { AppContext, NamespaceInfo } from "../../src/tiers/model.js";
import { premiumClusterName, serviceName, taskDefinitionFamily } from "../../src/tiers/naming.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";
import { stringContaining, stringMatching } from "../support/matchers.js";

const fence: Fence = { assertHeld: () => undefined };
const TENANT = "sc-t1";

let cloud: TestCloud;
let sd: ServiceDiscoveryClient;
let namespaces: CloudMapNamespaces;
let provider: EcsProvider;
let settings: TierSettings;

beforeAll(async () => {
  cloud = await startTestCloud();
  sd = awsClient(ServiceDiscoveryClient, localTarget(cloud.endpoint, cloud.config.region), RETRIES.standard);
  namespaces = new CloudMapNamespaces(sd);
  provider = new EcsProvider(cloud.clients.ecs, { region: cloud.config.region });
  settings = cloud.config;
}, 120_000);

afterAll(async () => {
  sd?.destroy();
  await cloud?.stop();
});

async function countNamed(name: string): Promise<number> {
  const res = await sd.send(new ListNamespacesCommand({}));
  return (res.Namespaces ?? []).filter((n) => n.Name === name).length;
}

describe("Cloud Map namespaces through the local cloud", () => {
  it("creates a tagged namespace once, reports it ready once listed, and deletes it", async () => {
    const name = tenantNamespaceName(settings.namePrefix, "ns-life");
    expect(await namespaces.ensure(name, { "tenant-id": "ns-life" }, fence)).toMatchObject({ kind: "inProgress" });
    const ready = await namespaces.ensure(name, { "tenant-id": "ns-life" }, fence);
    expect(ready).toMatchObject({
      kind: "ready",
      namespace: { name, id: stringMatching(/^ns-/), arn: stringContaining(":namespace/ns-") },
    });
    await namespaces.ensure(name, { "tenant-id": "ns-life" }, fence);
    expect(await countNamed(name)).toBe(1);
    if (ready.kind !== "ready") return;
    const tags = await sd.send(new ListTagsForResourceCommand({ ResourceARN: ready.namespace.arn }));
    expect(tags.Tags).toEqual(
      expect.arrayContaining([
        { Key: "managed-by", Value: "ecs-tenant-operator" },
        { Key: "tenant-id", Value: "ns-life" },
      ]),
    );

    expect((await namespaces.remove(name, fence)).kind).toBe("inProgress");
    expect(await namespaces.remove(name, fence)).toEqual({ kind: "gone" });
    expect(await countNamed(name)).toBe(0);
  });

  it("neither uses nor deletes a namespace of that name it does not manage", async () => {
    await sd.send(new CreateHttpNamespaceCommand({ Name: "someone-elses", Tags: [{ Key: "team", Value: "other" }] }));
    await expect(namespaces.ensure("someone-elses", {}, fence)).rejects.toBeInstanceOf(UnmanagedResourceError);
    await expect(namespaces.remove("someone-elses", fence)).rejects.toBeInstanceOf(UnmanagedResourceError);
    expect(await countNamed("someone-elses")).toBe(1);
  });
});

describe("Service Connect and runtimePlatform through the local cloud", () => {
  it("creates services with Service Connect in the tenant's namespace, reads it back, and converges; then turns it off", async () => {
    const nsName = tenantNamespaceName(settings.namePrefix, TENANT);
    await namespaces.ensure(nsName, { "tenant-id": TENANT }, fence);
    const state = await namespaces.ensure(nsName, { "tenant-id": TENANT }, fence);
    if (state.kind !== "ready") throw new Error(`namespace not ready: ${state.reason}`);
    const namespace: NamespaceInfo = { name: state.namespace.name, arn: state.namespace.arn };

    const spec = tenantRecordSchema.parse({ tenantId: TENANT, tenantName: "Service Connect", tier: "premium" });
    const context: AppContext = { region: cloud.config.region, accountId: "123456789012", namespace };
    const footprint = footprintForTenant(TENANT, settings);
    const converge = async (ctx: AppContext) => {
      const desired = desiredForTenant(spec, defaultCatalogue, settings, undefined, ctx);
      const observed = await provider.observe(footprint);
      const plan = diff(desired, observed, footprint);
      await provider.apply(plan.actions, observed, fence);
      return plan;
    };
    await converge(context);

    const cluster = premiumClusterName(settings.namePrefix, TENANT);
    const names = (["orders", "rproxy"] as const).map((app) => serviceName(settings.namePrefix, TENANT, app));
    const described = await cloud.clients.ecs.send(new DescribeServicesCommand({ cluster, services: names }));
    const connect = (name: string) =>
      described.services?.find((s) => s.serviceName === name)?.deployments?.[0]?.serviceConnectConfiguration;
    expect(connect(names[0]!)).toEqual({
      enabled: true,
      namespace: namespace.arn,
      services: [{ portName: "orders", discoveryName: "orders-api", clientAliases: [{ port: 3010, dnsName: `orders-api.${nsName}.sc` }] }],
    });
    expect(connect(names[1]!)).toEqual({ enabled: true, namespace: namespace.arn, services: [] });

    // The task definition reads back with its platform and its http port.
    const td = await cloud.clients.ecs.send(
      new DescribeTaskDefinitionCommand({ taskDefinition: taskDefinitionFamily(settings.namePrefix, TENANT, "orders") }),
    );
    expect(td.taskDefinition?.runtimePlatform).toEqual({ cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" });
    expect(td.taskDefinition?.containerDefinitions?.[0]?.portMappings?.[0]).toMatchObject({
      name: "orders",
      containerPort: 3010,
      appProtocol: "http",
    });
    const env = Object.fromEntries((td.taskDefinition?.containerDefinitions?.[0]?.environment ?? []).map((e) => [e.name ?? "", e.value]));
    expect(env).toMatchObject({ AWS_REGION: cloud.config.region });
    const rproxyTd = await cloud.clients.ecs.send(
      new DescribeTaskDefinitionCommand({ taskDefinition: taskDefinitionFamily(settings.namePrefix, TENANT, "rproxy") }),
    );
    expect(rproxyTd.taskDefinition?.containerDefinitions?.[0]?.environment).toContainEqual({ name: "NAMESPACE", value: nsName });

    // Observed as desired: a second pass makes no call.
    const observed = await provider.observe(footprint);
    expect(observed.services.find((s) => s.name === names[0])?.serviceConnect).toMatchObject({
      enabled: true,
      namespace: namespace.arn,
      servers: [{ discoveryName: "orders-api", port: 3010 }],
    });
    expect(diff(desiredForTenant(spec, defaultCatalogue, settings, undefined, context), observed, footprint).actions).toEqual([]);

    // Without the namespace, Service Connect goes off with one UpdateService per service.
    const { namespace: _gone, ...withoutNamespace } = context;
    const off = await converge(withoutNamespace);
    expect(off.actions.filter((a) => a.kind === "updateService" && a.serviceConnect === "disable")).toHaveLength(4);
    const after = await provider.observe(footprint);
    for (const s of after.services) expect(s.serviceConnect?.enabled ?? false).toBe(false);
    expect(diff(desiredForTenant(spec, defaultCatalogue, settings, undefined, withoutNamespace), after, footprint).actions).toEqual([]);
  });
});
