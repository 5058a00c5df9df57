import { CreateTableCommand, DynamoDBClient, PutItemCommand, TransactWriteItemsCommand } from "@aws-sdk/client-dynamodb";
import { parseArgs } from "node:util";
import { z } from "zod";
import { localTarget, startLocalCloud } from "../src/localcloud/index.js";
import { awsClient, RETRIES } from "../src/providers/aws-clients.js";
import { machineInfo } from "./machine.js";
import { median } from "./stats.js";

/**
 * `npm run bench:transactions [-- --records 0,1000,5000 --samples 20]`: what one
 * TransactWriteItems costs as a table's stream grows, through the local cloud
 * (rehearsed on scratch tables, src/localcloud/dynamodb-transactions.ts) and
 * sent to moto directly (moto copies the table and its stream first), in one
 * run on one moto. The transaction is the controller's status write: a
 * ConditionCheck on a lease item and an Update of a tenant record.
 */
const Args = z.object({
  records: z
    .string()
    .transform((s) => s.split(",").map((x) => Number(x.trim())))
    .pipe(z.array(z.number().int().nonnegative()).nonempty()),
  samples: z.coerce.number().int().positive(),
});
const { values } = parseArgs({
  options: { records: { type: "string", default: "0,1000,5000" }, samples: { type: "string", default: "20" } },
  strict: true,
});
const parsed = Args.safeParse(values);
if (!parsed.success) {
  process.stderr.write(
    `${parsed.error.issues.map((i) => `--${i.path.join(".")}: ${i.message}`).join("\n")}\n(--records takes a comma-separated list of stream sizes, e.g. 0,1000,5000; --samples a positive count)\n`,
  );
  process.exit(2);
}
const { records: sizes, samples } = parsed.data;

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
const cloud = await startLocalCloud({ port: 0, speed: 0 });
const paths = {
  "local cloud (rehearsed)": awsClient(DynamoDBClient, localTarget(cloud.endpoint), RETRIES.none),
  "moto directly": awsClient(DynamoDBClient, localTarget(cloud.motoEndpoint), RETRIES.none),
};

/** A table keyed by `id`; the tenants table has a stream, as the controller's does. */
function createTable(ddb: DynamoDBClient, name: string, stream: boolean) {
  return ddb.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
      ...(stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" as const } } : {}),
    }),
  );
}

async function tables(ddb: DynamoDBClient, prefix: string): Promise<void> {
  await createTable(ddb, `${prefix}-tenants`, true);
  await createTable(ddb, `${prefix}-operator`, false);
  await ddb.send(new PutItemCommand({ TableName: `${prefix}-operator`, Item: { id: { S: "lease#shard-0" }, holder: { S: "me" } } }));
}

const statusWrite = (prefix: string, n: number) =>
  new TransactWriteItemsCommand({
    TransactItems: [
      {
        ConditionCheck: {
          TableName: `${prefix}-operator`,
          Key: { id: { S: "lease#shard-0" } },
          ConditionExpression: "holder = :me",
          ExpressionAttributeValues: { ":me": { S: "me" } },
        },
      },
      {
        Update: {
          TableName: `${prefix}-tenants`,
          Key: { id: { S: `t-${n % 50}` } },
          UpdateExpression: "SET #s = :s",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: { ":s": { S: `{"phase":"Ready","generation":${n}}`.padEnd(600, " ") } },
        },
      },
    ],
  });

const rows: { path: string; records: number; medianMs: number }[] = [];
for (const [path, ddb] of Object.entries(paths)) {
  const prefix = path.startsWith("local") ? "rehearsed" : "moto";
  await tables(ddb, prefix);
  let written = 0;
  for (const size of sizes) {
    // Grow the stream with plain writes of record-sized items, as status writes would.
    for (; written < size; written++) {
      await ddb.send(
        new PutItemCommand({ TableName: `${prefix}-tenants`, Item: { id: { S: `t-${written % 50}` }, status: { S: "x".repeat(600) } } }),
      );
    }
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      await ddb.send(statusWrite(prefix, i));
      times.push(performance.now() - started);
    }
    written += samples;
    rows.push({ path, records: size, medianMs: Math.round(median(times) * 10) / 10 });
    process.stderr.write(`${path}: ${size} stream records, median ${median(times).toFixed(1)} ms\n`);
  }
}
for (const ddb of Object.values(paths)) ddb.destroy();
await cloud.stop();

const m = machineInfo();
process.stdout.write(
  `TransactWriteItems (status write), median of ${samples}; ${m.nproc} cores, ${m.cpuModel}, Node ${m.node}, ${m.date}\n\n`,
);
process.stdout.write(
  `| stream records | ${Object.keys(paths).join(" | ")} |\n|---:|${Object.keys(paths)
    .map(() => "---:")
    .join("|")}|\n`,
);
for (const size of sizes) {
  const cells = Object.keys(paths).map((p) => `${rows.find((r) => r.path === p && r.records === size)?.medianMs ?? "-"} ms`);
  process.stdout.write(`| ${size.toLocaleString("en-US")} | ${cells.join(" | ")} |\n`);
}
