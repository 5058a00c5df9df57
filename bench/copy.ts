import { CreateTableCommand, DynamoDBClient, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { S3Client } from "@aws-sdk/client-s3";
import { parseArgs } from "node:util";
import { writeAll } from "../src/data/batch-writer.js";
import { DEFAULT_RETRY, DynamoTenantData } from "../src/data/index.js";
import { localTarget, startLocalCloud } from "../src/localcloud/index.js";
import { awsClient, RETRIES } from "../src/providers/aws-clients.js";
import { machineInfo } from "./machine.js";

/**
 * `node --import tsx bench/copy.ts [--items 10000,100000]`: how fast the
 * tenant data mover copies and verifies one tenant's items, against the
 * local cloud (moto behind the local proxy, on loopback, the real SDK path).
 * For each size: loads N items of one tenant plus N/10 of another into a
 * pooled-style table with a stream, then times openCapture (which reads the
 * stream to its end), the backfill into an empty table, and the digest of
 * each side. The figures are moto's, on this machine: a ceiling set by a
 * single-threaded Python server, not DynamoDB's.
 */
const { values: args } = parseArgs({
  options: {
    items: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "4" },
    "item-bytes": { type: "string", default: "200" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write("usage: node --import tsx bench/copy.ts [--items 10000,100000] [--concurrency 4] [--item-bytes 200]\n");
  process.exit(0);
}
const sizes = args.items.split(",").map((s) => Number(s.trim()));
if (sizes.some((n) => !Number.isInteger(n) || n <= 0))
  throw new Error(`--items: expected a comma-separated list of positive integers, got ${args.items}`);
const concurrency = Number(args.concurrency);
const itemBytes = Number(args["item-bytes"]);

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
const cloud = await startLocalCloud({ port: 0, speed: 0 });
const target = localTarget(cloud.endpoint);
const dynamodb = awsClient(DynamoDBClient, target, RETRIES.standard);
const streams = awsClient(DynamoDBStreamsClient, target, RETRIES.standard);
const s3 = awsClient(S3Client, target, RETRIES.standard);
const data = new DynamoTenantData(dynamodb, streams, s3, { writeConcurrency: concurrency });
const held = { assertHeld: () => undefined };

interface Row {
  readonly items: number;
  readonly loadS: number;
  readonly captureMs: number;
  readonly backfillS: number;
  readonly backfillPerS: number;
  readonly digestS: number;
  readonly digestPerS: number;
  readonly equal: boolean;
}

const rows: Row[] = [];
try {
  for (const n of sizes) {
    const source = await createTable(`bench-src-${n}`);
    const target = await createTable(`bench-dst-${n}`);
    progress(`${n}: loading ${n} items of tenant bench-a and ${Math.ceil(n / 10)} of bench-b`);
    const t0 = performance.now();
    await load(source, "bench-a", n);
    await load(source, "bench-b", Math.ceil(n / 10));
    const loadS = (performance.now() - t0) / 1000;

    progress(`${n}: openCapture (reads the stream to its end: ${n + Math.ceil(n / 10)} records)`);
    const t1 = performance.now();
    await data.openCapture(source);
    const captureMs = performance.now() - t1;

    progress(`${n}: backfill`);
    const t2 = performance.now();
    const { items } = await data.backfill("bench-a", source, target, held);
    const backfillS = (performance.now() - t2) / 1000;
    if (items !== n) throw new Error(`backfill copied ${items} items, expected ${n}`);

    progress(`${n}: digest of both sides`);
    const t3 = performance.now();
    const a = await data.digest("bench-a", source);
    const digestS = (performance.now() - t3) / 1000;
    const b = await data.digest("bench-a", target);
    rows.push({
      items: n,
      loadS,
      captureMs,
      backfillS,
      backfillPerS: n / backfillS,
      digestS,
      digestPerS: n / digestS,
      equal: a.hash === b.hash && a.count === n,
    });
    progress(`${n}: done`);
  }
} finally {
  dynamodb.destroy();
  streams.destroy();
  s3.destroy();
  await cloud.stop();
}

const m = machineInfo();
const header = ["items", "load s", "openCapture ms", "backfill s", "backfill items/s", "digest s", "digest items/s", "digests equal"];
const body = rows.map((r) => [
  String(r.items),
  r.loadS.toFixed(1),
  r.captureMs.toFixed(0),
  r.backfillS.toFixed(1),
  r.backfillPerS.toFixed(0),
  r.digestS.toFixed(2),
  r.digestPerS.toFixed(0),
  r.equal ? "yes" : "NO",
]);
const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)));
const line = (cells: readonly string[]) => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join("  ");
process.stdout.write(
  [
    `tenant data copy, moto via the local cloud; ${itemBytes}-byte payload per item; ${concurrency} BatchWriteItem calls in flight`,
    `machine: ${m.nproc} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}, ${m.date}`,
    line(header),
    ...body.map(line),
    "",
  ].join("\n"),
);

async function createTable(name: string): Promise<string> {
  await dynamodb.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [
        { AttributeName: "tenantId", AttributeType: "S" },
        { AttributeName: "orderId", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "tenantId", KeyType: "HASH" },
        { AttributeName: "orderId", KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
    }),
  );
  return name;
}

async function load(table: string, tenantId: string, n: number): Promise<void> {
  const chunk = 5000;
  for (let start = 0; start < n; start += chunk) {
    const items = Array.from({ length: Math.min(chunk, n - start) }, (_, i) => item(tenantId, start + i));
    await writeAll(
      dynamodb,
      table,
      items.map((Item) => ({ PutRequest: { Item } })),
      held,
      { retry: DEFAULT_RETRY, concurrency: 8 },
    );
  }
}

function item(tenantId: string, i: number): Record<string, AttributeValue> {
  return {
    tenantId: { S: tenantId },
    orderId: { S: `order-${String(i).padStart(8, "0")}` },
    quantity: { N: String(i % 97) },
    price: { N: "19.99" },
    status: { S: i % 3 === 0 ? "shipped" : "open" },
    lines: { L: [{ M: { productId: { S: `p-${i % 50}` }, qty: { N: "2" } } }] },
    note: { S: "x".repeat(itemBytes) },
  };
}

function progress(text: string): void {
  process.stderr.write(`[copy] ${text}\n`);
}
