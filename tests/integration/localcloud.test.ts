import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { DescribeVpcsCommand, DescribeSubnetsCommand } from "@aws-sdk/client-ec2";
import { DescribeEventBusCommand } from "@aws-sdk/client-eventbridge";
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteClusterCommand,
  DeleteServiceCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  ECSClient,
  ListClustersCommand,
  ListServicesCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type Service,
} from "@aws-sdk/client-ecs";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bootstrapAccount, localTarget, MotoNotFoundError, startLocalCloud } from "../../src/localcloud/index.js";
import { startTestCloud, type TestCloud } from "../support/localcloud.js";
import { awsClient, RETRIES } from "../../src/providers/aws-clients.js";

let cloud: TestCloud;
let ecs: ECSClient;
/** No SDK retries: the test sees exactly what the scheduler answered. */
let ecsOnce: ECSClient;

beforeAll(async () => {
  cloud = await startTestCloud();
  ecs = cloud.clients.ecs;
  ecsOnce = awsClient(ECSClient, localTarget(cloud.endpoint), RETRIES.none);
});

afterAll(async () => {
  ecsOnce?.destroy();
  await cloud?.stop();
});

beforeEach(() => {
  cloud.control.setThrottling(false);
  cloud.control.setFaults([]);
});

const cluster = () => cloud.config.advancedCluster;

async function registerImage(family: string, image: string): Promise<string> {
  const out = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family,
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: "256",
      memory: "512",
      containerDefinitions: [{ name: "app", image, essential: true }],
    }),
  );
  return out.taskDefinition?.taskDefinitionArn ?? "";
}

async function create(
  name: string,
  taskDefinition: string,
  clientToken: string,
  client = ecs,
  breaker?: { enable: boolean; rollback: boolean },
): Promise<Service | undefined> {
  const out = await client.send(
    new CreateServiceCommand({
      cluster: cluster(),
      serviceName: name,
      taskDefinition,
      desiredCount: 2,
      launchType: "FARGATE",
      clientToken,
      ...(breaker !== undefined ? { deploymentConfiguration: { deploymentCircuitBreaker: breaker } } : {}),
      networkConfiguration: {
        awsvpcConfiguration: { subnets: [...cloud.account.subnets], securityGroups: [...cloud.account.securityGroups] },
      },
    }),
  );
  return out.service;
}

async function describeOne(name: string): Promise<Service> {
  const out = await ecs.send(new DescribeServicesCommand({ cluster: cluster(), services: [name] }));
  const service = out.services?.[0];
  if (service === undefined) throw new Error(`service ${name} not described: ${JSON.stringify(out.failures)}`);
  return service;
}

async function errorOf(promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the call to fail");
}

describe("ECS deployments over simulated time", () => {
  it("a new service is IN_PROGRESS with nothing running, then COMPLETED with running = desired", async () => {
    const td = await registerImage("orders", "public.ecr.aws/demo/orders:1.0.0");
    const createdService = await create("orders-a", td, "tok-a");
    expect(createdService).toMatchObject({ status: "ACTIVE", runningCount: 0, desiredCount: 2 });

    const before = await describeOne("orders-a");
    expect(before.runningCount).toBe(0);
    expect(before.deployments).toMatchObject([{ status: "PRIMARY", rolloutState: "IN_PROGRESS", runningCount: 0, taskDefinition: td }]);
    expect(before.deployments?.[0]?.id).toBe(createdService?.deployments?.[0]?.id);

    cloud.control.advance(5_000);
    expect((await describeOne("orders-a")).runningCount).toBe(1);
    cloud.control.advance(2_000);
    const after = await describeOne("orders-a");
    expect(after).toMatchObject({ status: "ACTIVE", runningCount: 2, pendingCount: 0, desiredCount: 2 });
    expect(after.deployments).toMatchObject([{ rolloutState: "COMPLETED", runningCount: 2, desiredCount: 2, failedTasks: 0 }]);
  });

  it("a crashloop image never runs and its deployment FAILS by the circuit breaker", async () => {
    const td = await registerImage("crashy", "public.ecr.aws/demo/orders:crashloop");
    await create("crashy-a", td, "tok-c", ecs, { enable: true, rollback: false });
    cloud.control.advance(60_000);
    const service = await describeOne("crashy-a");
    expect(service.runningCount).toBe(0);
    expect(service.deployments?.[0]).toMatchObject({ rolloutState: "FAILED", runningCount: 0 });
    expect(service.deployments?.[0]?.failedTasks).toBeGreaterThanOrEqual(3);
    expect(service.deployments?.[0]?.rolloutStateReason).toMatch(/circuit breaker/);
  });

  it("with rollback on, a crashloop revision FAILS and ECS rolls the service back to the previous one, as DescribeServices shows", async () => {
    const good = await registerImage("rollback", "public.ecr.aws/demo/orders:1.0.0");
    await create("rollback-a", good, "tok-rb", ecs, { enable: true, rollback: true });
    cloud.control.advance(7_000);
    const previousId = (await describeOne("rollback-a")).deployments?.[0]?.id;
    const bad = await registerImage("rollback", "public.ecr.aws/demo/orders:crashloop");
    await ecs.send(new UpdateServiceCommand({ cluster: cluster(), service: "rollback-a", taskDefinition: bad }));
    cloud.control.advance(9_000);
    const rolling = await describeOne("rollback-a");
    expect(rolling.deploymentConfiguration?.deploymentCircuitBreaker).toEqual({ enable: true, rollback: true });
    expect(rolling.taskDefinition).toBe(good);
    expect(rolling.deployments).toMatchObject([
      {
        status: "PRIMARY",
        taskDefinition: good,
        rolloutState: "IN_PROGRESS",
        rolloutStateReason: `ECS deployment circuit breaker: rolling back to deploymentId ${previousId ?? ""}.`,
      },
      {
        status: "ACTIVE",
        taskDefinition: bad,
        rolloutState: "FAILED",
        rolloutStateReason: "ECS deployment circuit breaker: tasks failed to start.",
      },
      { status: "ACTIVE", taskDefinition: good, runningCount: 2 },
    ]);
    cloud.control.advance(30_000);
    const after = await describeOne("rollback-a");
    expect(after.runningCount).toBe(2);
    expect(after.deployments).toMatchObject([{ status: "PRIMARY", taskDefinition: good, rolloutState: "COMPLETED" }]);
    expect(after.deployments).toHaveLength(1);
  });

  it("UpdateService with a new revision (named by family) rolls a new PRIMARY deployment over the old one", async () => {
    await registerImage("rolling", "demo/rolling:1");
    await create("rolling-a", "rolling", "tok-r");
    cloud.control.advance(7_000);
    const v2 = await registerImage("rolling", "demo/rolling:2");
    await ecs.send(new UpdateServiceCommand({ cluster: cluster(), service: "rolling-a", taskDefinition: "rolling" }));
    const during = await describeOne("rolling-a");
    expect(during.taskDefinition).toBe(v2);
    expect(during.deployments?.map((d) => [d.status, d.runningCount])).toEqual([
      ["PRIMARY", 0],
      ["ACTIVE", 2],
    ]);
    cloud.control.advance(7_000);
    const after = await describeOne("rolling-a");
    expect(after.deployments).toMatchObject([{ status: "PRIMARY", taskDefinition: v2, rolloutState: "COMPLETED", runningCount: 2 }]);
    expect(after.deployments).toHaveLength(1);
  });
});

describe("CreateService idempotency", () => {
  it("refuses the same name with another token and returns the same service for the same token", async () => {
    const td = await registerImage("idem", "demo/idem:1");
    cloud.control.resetCalls();
    const first = await create("idem-a", td, "token-1");
    const conflict = await errorOf(create("idem-a", td, "token-2", ecsOnce));
    expect(conflict.name).toBe("InvalidParameterException");
    expect(conflict.message).toBe("Creation of service was not idempotent.");
    const again = await create("idem-a", td, "token-1");
    expect(again?.serviceArn).toBe(first?.serviceArn);
    expect(again?.deployments?.[0]?.id).toBe(first?.deployments?.[0]?.id);
    expect(cloud.control.ecsCalls()).toEqual({ CreateService: 3 });
  });
});

describe("DeleteService and DeleteCluster", () => {
  it("a deleted service drains, then turns INACTIVE; its cluster cannot be deleted until then", async () => {
    const doomed = "doomed";
    await ecs.send(new CreateClusterCommand({ clusterName: doomed }));
    const td = await registerImage("gone", "demo/gone:1");
    await ecs.send(
      new CreateServiceCommand({ cluster: doomed, serviceName: "gone-a", taskDefinition: td, desiredCount: 1, clientToken: "g" }),
    );
    cloud.control.advance(5_000);

    const refusedActive = await errorOf(ecsOnce.send(new DeleteClusterCommand({ cluster: doomed })));
    expect(refusedActive.name).toBe("ClusterContainsServicesException");

    await ecs.send(new UpdateServiceCommand({ cluster: doomed, service: "gone-a", desiredCount: 0 }));
    const deleted = await ecs.send(new DeleteServiceCommand({ cluster: doomed, service: "gone-a" }));
    expect(deleted.service?.status).toBe("DRAINING");
    const describe = async () => (await ecs.send(new DescribeServicesCommand({ cluster: doomed, services: ["gone-a"] }))).services?.[0];
    expect((await describe())?.status).toBe("DRAINING");
    const refusedDraining = await errorOf(ecsOnce.send(new DeleteClusterCommand({ cluster: doomed })));
    expect(refusedDraining.name).toBe("ClusterContainsServicesException");
    const notActive = await errorOf(ecsOnce.send(new UpdateServiceCommand({ cluster: doomed, service: "gone-a", desiredCount: 1 })));
    expect(notActive.name).toBe("ServiceNotActiveException");

    cloud.control.advance(20_000);
    expect(await describe()).toMatchObject({ status: "INACTIVE", runningCount: 0 });
    expect((await ecs.send(new ListServicesCommand({ cluster: doomed }))).serviceArns).toEqual([]);
    const gone = await ecs.send(new DeleteClusterCommand({ cluster: doomed }));
    expect(gone.cluster?.status).toBe("INACTIVE");
  });
});

describe("throttling, faults and the control API", () => {
  it("returns ThrottlingException past the documented burst when enabled, and not when disabled", async () => {
    cloud.control.setThrottling(true);
    const outcomes: string[] = [];
    for (let i = 0; i < 25; i++) {
      outcomes.push(
        await ecsOnce.send(new CreateClusterCommand({ clusterName: "throttle-probe" })).then(
          () => "ok",
          (e: Error) => e.name,
        ),
      );
    }
    expect(outcomes.slice(0, 20)).toEqual(Array(20).fill("ok"));
    expect(outcomes.slice(20)).toContain("ThrottlingException");
    const err = await errorOf(ecsOnce.send(new CreateClusterCommand({ clusterName: "throttle-probe" })));
    expect(err.message).toBe("Rate exceeded");
    expect(err.$metadata?.httpStatusCode).toBe(400);

    cloud.control.setThrottling(false);
    await expect(ecsOnce.send(new CreateClusterCommand({ clusterName: "throttle-probe" }))).resolves.toBeDefined();
  });

  it("injects the configured error the configured number of times, then lets calls through", async () => {
    cloud.control.setFaults([{ service: "ecs", action: "ListClusters", errorCode: "ServerException", message: "boom", count: 1 }]);
    const err = await errorOf(ecsOnce.send(new ListClustersCommand({})));
    expect(err.name).toBe("ServerException");
    expect(err.$metadata?.httpStatusCode).toBe(500);
    await expect(ecsOnce.send(new ListClustersCommand({}))).resolves.toHaveProperty("clusterArns");
  });

  it("adds injected latency", async () => {
    cloud.control.setFaults([{ service: "ecs", action: "DescribeClusters", latencyMs: 300 }]);
    const start = Date.now();
    await ecsOnce.send(new DescribeClustersCommand({ clusters: [cluster()] }));
    expect(Date.now() - start).toBeGreaterThanOrEqual(290);
  });

  it("is steerable over HTTP under /_scheduler/", async () => {
    const before = cloud.control.now();
    const advanced = await fetch(`${cloud.endpoint}/_scheduler/advance`, { method: "POST", body: JSON.stringify({ ms: 1_234 }) });
    expect(advanced.status).toBe(200);
    const state = (await (await fetch(`${cloud.endpoint}/_scheduler/state`)).json()) as { now: number; services: { name: string }[] };
    expect(state.now - before).toBe(1_234);
    expect(state.services.map((s) => s.name)).toContain("orders-a");
    const bad = await fetch(`${cloud.endpoint}/_scheduler/faults`, { method: "POST", body: JSON.stringify([{ probability: 3 }]) });
    expect(bad.status).toBe(400);
    expect((await fetch(`${cloud.endpoint}/_scheduler/nope`)).status).toBe(404);
  });
});

describe("bootstrap", () => {
  it("is idempotent: a second run returns the same resources and creates nothing new", async () => {
    const again = await bootstrapAccount(cloud.clients, cloud.config);
    expect(again).toEqual(cloud.account);
    const vpcs = await cloud.clients.ec2.send(
      new DescribeVpcsCommand({ Filters: [{ Name: "tag:localcloud", Values: ["ecs-tenant-operator"] }] }),
    );
    expect(vpcs.Vpcs).toHaveLength(1);
    const subnets = await cloud.clients.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [again.vpcId] }] }));
    expect(subnets.Subnets?.map((s) => s.SubnetId).sort()).toEqual([...again.subnets].sort());
    const clusters = await ecs.send(
      new DescribeClustersCommand({ clusters: [cloud.config.poolCluster, cloud.config.advancedCluster], include: ["TAGS"] }),
    );
    for (const c of clusters.clusters ?? []) expect(c.tags).toContainEqual({ key: "managed-by", value: "ecs-tenant-operator" });
    expect(again.tenantsStreamArn).toMatch(/stream/);
    expect(again.listenerArn).toMatch(/listener/);
  });

  it("honours the configured names: a named event bus, tables and clusters, again idempotently", async () => {
    const names = {
      ...cloud.config,
      eventBusName: "tenant-events",
      tenantsTable: "alt-tenants",
      leaseTable: "alt-lease",
      namePrefix: "alt",
      poolCluster: "alt-pool",
      advancedCluster: "alt-advanced",
    };
    const first = await bootstrapAccount(cloud.clients, names);
    expect(await bootstrapAccount(cloud.clients, names)).toEqual(first);
    expect(first.vpcId).toBe(cloud.account.vpcId);
    expect((await cloud.clients.eventbridge.send(new DescribeEventBusCommand({ Name: "tenant-events" }))).Name).toBe("tenant-events");
    const lease = await cloud.clients.dynamodb.send(new DescribeTableCommand({ TableName: "alt-lease" }));
    expect(lease.Table?.KeySchema).toEqual([{ AttributeName: "pk", KeyType: "HASH" }]);
    const tenants = await cloud.clients.dynamodb.send(new DescribeTableCommand({ TableName: "alt-tenants" }));
    expect(tenants.Table?.StreamSpecification).toEqual({ StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" });
    expect(first.poolClusterArn).toMatch(/cluster\/alt-pool$/);
  });
});

describe("S3 through the local cloud", () => {
  it("creates a bucket, puts, heads, gets, lists and deletes objects (path-style)", async () => {
    const s3 = cloud.clients.s3;
    await s3.send(new CreateBucketCommand({ Bucket: "s3-probe" }));
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    await s3.send(
      new PutObjectCommand({ Bucket: "s3-probe", Key: "tenants/t1/part-0001.json", Body: '{"n":1}', ContentType: "application/json" }),
    );
    await s3.send(new PutObjectCommand({ Bucket: "s3-probe", Key: "tenants/t1/big.bin", Body: big }));
    await s3.send(new PutObjectCommand({ Bucket: "s3-probe", Key: "tenants/t2/part-0001.json", Body: "{}" }));

    const got = await s3.send(new GetObjectCommand({ Bucket: "s3-probe", Key: "tenants/t1/part-0001.json" }));
    expect(await got.Body?.transformToString()).toBe('{"n":1}');
    expect(got.ContentType).toBe("application/json");
    const gotBig = await s3.send(new GetObjectCommand({ Bucket: "s3-probe", Key: "tenants/t1/big.bin" }));
    expect(Buffer.from((await gotBig.Body?.transformToByteArray()) ?? []).equals(big)).toBe(true);
    // A HEAD answer has no body, yet must say how large the object is.
    expect((await s3.send(new HeadObjectCommand({ Bucket: "s3-probe", Key: "tenants/t1/big.bin" }))).ContentLength).toBe(big.length);

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: "s3-probe", Prefix: "tenants/t1/" }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(["tenants/t1/big.bin", "tenants/t1/part-0001.json"]);

    await s3.send(new DeleteObjectCommand({ Bucket: "s3-probe", Key: "tenants/t1/part-0001.json" }));
    const after = await s3.send(new ListObjectsV2Command({ Bucket: "s3-probe", Prefix: "tenants/" }));
    expect(after.Contents?.map((o) => o.Key)).toEqual(["tenants/t1/big.bin", "tenants/t2/part-0001.json"]);
    const missing = await errorOf(s3.send(new GetObjectCommand({ Bucket: "s3-probe", Key: "tenants/t1/part-0001.json" })));
    expect(missing.name).toBe("NoSuchKey");
  });

  it("the bootstrap creates the configured backup bucket, and another when named, idempotently", async () => {
    // BACKUP_BUCKET's default: "<NAME_PREFIX>-tenant-backups".
    expect(cloud.account.backupBucket).toBe(`${cloud.config.namePrefix}-tenant-backups`);
    await expect(cloud.clients.s3.send(new HeadBucketCommand({ Bucket: cloud.config.backupBucket }))).resolves.toBeDefined();
    const names = { ...cloud.config, backupBucket: "tenant-backups" };
    const first = await bootstrapAccount(cloud.clients, names);
    expect(first).toEqual({ ...cloud.account, backupBucket: "tenant-backups" });
    await cloud.clients.s3.send(new PutObjectCommand({ Bucket: "tenant-backups", Key: "keep.json", Body: "{}" }));
    expect(await bootstrapAccount(cloud.clients, names)).toEqual(first);
    await expect(cloud.clients.s3.send(new HeadBucketCommand({ Bucket: "tenant-backups" }))).resolves.toBeDefined();
    const buckets = (await cloud.clients.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name) ?? [];
    expect(buckets.filter((b) => b === "tenant-backups")).toHaveLength(1);
    // A re-run keeps what the bucket holds.
    const kept = await cloud.clients.s3.send(new ListObjectsV2Command({ Bucket: "tenant-backups" }));
    expect(kept.Contents?.map((o) => o.Key)).toEqual(["keep.json"]);
  });

  it("a bootstrap asked for a bucket without an S3 client says so", async () => {
    const { s3: _s3, ...withoutS3 } = cloud.clients;
    const err = await errorOf(bootstrapAccount(withoutS3, { ...cloud.config, backupBucket: "no-client" }));
    expect(err.message).toMatch(/bucket no-client: an S3 client/);
  });
});

describe("process lifecycle", () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it("stop() kills moto and closes the endpoint; a second stop() is harmless", async () => {
    const local = await startLocalCloud({ port: 0 });
    expect(alive(local.motoPid)).toBe(true);
    await local.stop();
    await local.stop();
    expect(alive(local.motoPid)).toBe(false);
    await expect(fetch(`${local.endpoint}/_scheduler/state`)).rejects.toThrow();
  });

  it("SIGTERM of the parent leaves no moto running", async () => {
    const dir = mkdtempSync(join(tmpdir(), "localcloud-"));
    const script = join(dir, "parent.mts");
    const motoModule = resolve(import.meta.dirname, "../../src/localcloud/moto-process.ts");
    writeFileSync(
      script,
      `import { startMotoProcess } from ${JSON.stringify(motoModule)};\nconst m = await startMotoProcess();\nconsole.log(m.pid);\nsetInterval(() => {}, 1000);\n`,
    );
    try {
      const parent = spawn(process.execPath, ["--import", "tsx", script], {
        cwd: resolve(import.meta.dirname, "../.."),
        stdio: ["ignore", "pipe", "inherit"],
      });
      const line = await new Promise<string>((res, rej) => {
        createInterface({ input: parent.stdout }).once("line", res);
        parent.once("exit", (code) => rej(new Error(`parent exited early (${code})`)));
      });
      const motoPid = Number(line);
      expect(alive(motoPid)).toBe(true);
      const exited = new Promise<NodeJS.Signals | null>((res) => parent.once("exit", (_code, signal) => res(signal)));
      parent.kill("SIGTERM");
      expect(await exited).toBe("SIGTERM");
      const deadline = Date.now() + 5_000;
      while (alive(motoPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(alive(motoPid)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a missing moto_server with the install hint", async () => {
    const err = await errorOf(startLocalCloud({ port: 0, motoBin: "/nonexistent/moto_server" }));
    expect(err).toBeInstanceOf(MotoNotFoundError);
    expect(err.message).toContain("pip install 'moto[server]'");
  });
});
