import { expect, it } from "vitest";
import { albsFor, defaultMix } from "../../bench/throughput.js";

it("gives a throughput run a listener for every 90 silo tenants, so none waits for 'add a listener'", () => {
  expect(defaultMix(500)).toEqual({ basic: 200, advanced: 200, premium: 100 });
  expect(albsFor(defaultMix(500))).toBe(4);
  expect(albsFor({ basic: 10, advanced: 0, premium: 0 })).toBe(1);
  expect(albsFor({ basic: 0, advanced: 60, premium: 30 })).toBe(1);
  expect(albsFor({ basic: 0, advanced: 60, premium: 31 })).toBe(2);
});
