#!/usr/bin/env node
// The installed command and the image run the compiled CLI (dist/, from
// `npm run build`). A clone right after `npm ci` has no dist/: there it runs the
// TypeScript sources through tsx (a devDependency, so present in a clone),
// registered in this same process so signals and the exit code stay this process's.
// TENANTCTL_FROM_SOURCE=1 takes the sources even when dist/ exists (a stale build).
import { existsSync } from "node:fs";
import process from "node:process";
import { URL } from "node:url";

const dist = new URL("../dist/cli/tenantctl.js", import.meta.url);
const source = new URL("../src/cli/tenantctl.ts", import.meta.url);

if (existsSync(dist) && process.env.TENANTCTL_FROM_SOURCE !== "1") {
  await import(dist.href);
} else {
  let api;
  try {
    api = await import("tsx/esm/api");
  } catch (err) {
    if (err && err.code === "ERR_MODULE_NOT_FOUND") {
      process.stderr.write(
        "tenantctl: dist/ is missing and tsx is not installed; run `npm ci` (then `npx tenantctl`) or `npm run build`\n",
      );
      process.exit(1);
    }
    throw err;
  }
  if (!existsSync(source)) {
    process.stderr.write("tenantctl: neither dist/ nor src/ is here; run `npm run build`\n");
    process.exit(1);
  }
  api.register();
  await import(source.href);
}
