import { BenchFixture, DEFAULT_TUNING } from "./fixture.js";
import { convergePool } from "./tenants.js";
import { measureOnboarding } from "./latency.js";
const t0 = performance.now();
const fx = await BenchFixture.start({ speed: 10, throttling: false, concurrency: 8, ...DEFAULT_TUNING });
console.log("started", performance.now() - t0);
await convergePool(fx);
console.log("pool", performance.now() - t0);
for (const tier of ["basic", "advanced", "premium"] as const) {
  for (let i = 0; i < 2; i++) {
    const s = await measureOnboarding(fx, `lat-${tier}-${i}`, tier);
    console.log(JSON.stringify(s));
  }
}
console.log("done", performance.now() - t0);
await fx.stop();
