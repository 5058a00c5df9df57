import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Io } from "../../src/cli/command.js";
import { main } from "../../src/cli/tenantctl.js";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const io: Io = { stdout, stderr, stdin: new PassThrough(), env: {} };
  const code = await main(argv, io);
  return { code, out, err };
}

describe("tenantctl's dispatcher", () => {
  it("--version prints package.json's version", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    expect(await run("--version")).toEqual({ code: 0, out: `tenantctl ${version}\n`, err: "" });
  });

  it("a mistyped command or option is a usage error (2) with the one meant", async () => {
    const r = await run("aply", "-f", "x.yaml");
    expect(r.code).toBe(2);
    expect(r.err).toBe('tenantctl: unknown command "aply": did you mean "apply"?\nRun `tenantctl --help` for the commands.\n');
    expect((await run("descibe", "t1")).err).toContain('did you mean "describe"?');
    expect((await run("--verison")).err).toContain('unknown option "--verison": did you mean "--version"?');
    const far = await run("frobnicate");
    expect(far.code).toBe(2);
    expect(far.err).not.toContain("did you mean");
  });

  it("no command prints the usage and exits 2; --help exits 0 and lists describe", async () => {
    expect((await run()).code).toBe(2);
    const help = await run("--help");
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^ {2}describe\s+Show one tenant in detail/m);
  });

  it("a bad flag of a command is a usage error (2)", async () => {
    const r = await run("describe", "t1", "--bogus");
    expect(r.code).toBe(2);
    expect(r.err).toContain("--bogus");
  });
});
