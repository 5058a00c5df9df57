import { BenchFixture, DEFAULT_TUNING, sleep } from "./fixture.js";
const fx = await BenchFixture.start({ speed: 10, throttling: false, concurrency: 8, ...DEFAULT_TUNING });
await sleep(4000);
console.log(JSON.stringify(fx.cloud.control.snapshot().services.map(s => ({c: s.cluster, n: s.name, st: s.status, d: s.deployments.map(d => [d.rolloutState, d.runningCount, d.desiredCount])}))));
console.log(fx.config.poolCluster, fx.cloud.control.ecsCalls(), fx.controller.manager.role);
await fx.stop();
