#!/usr/bin/env node
// The installed command runs the compiled CLI (npm run build); `npm start` runs the sources through tsx.
import("../dist/cli/tenantctl.js").catch((err) => {
  if (err && err.code === "ERR_MODULE_NOT_FOUND") {
    console.error("tenantctl: dist/ is missing; run `npm run build` first (or use `npx tsx src/cli/tenantctl.ts`)");
    process.exit(1);
  }
  throw err;
});
