import { DEFAULT_TUNING } from "./fixture.js";
import { defaultMix, measureThroughput } from "./throughput.js";
const n = Number(process.argv[2] ?? 100); const thr = process.argv[3] === "on"; const c = Number(process.argv[4] ?? 8);
const t0 = performance.now();
const r = await measureThroughput("x", { speed: 10, throttling: thr, concurrency: c, ...DEFAULT_TUNING }, defaultMix(n), 600_000, (l) => console.log(l));
console.log(JSON.stringify({ ...r, settings: undefined }, null, 1));
console.log("total", performance.now() - t0);
