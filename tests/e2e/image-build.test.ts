import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The container image without a Docker engine: scripts/build-image-tree.sh
 * runs the Dockerfile's own instructions into a directory and checks the
 * result (production deps only, `tenantctl controller --help`, HEALTHCHECK).
 */

const ROOT = resolve(import.meta.dirname, "../..");
const SCRIPT = join(ROOT, "scripts/build-image-tree.sh");

function runScript(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, reject) => {
    const child = spawn("bash", [SCRIPT, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "image-build-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the image tree", () => {
  it(
    "builds from the Dockerfile's steps into a runtime with only dist, bin, production node_modules and package.json",
    { timeout: 150_000 },
    async () => {
      const out = join(dir, "tree");
      const r = await runScript([out]);
      expect(r.stderr).toContain("running: node bin/tenantctl.js controller --help");
      expect(r.stderr).toContain("HEALTHCHECK: ok");
      expect(r.code, r.stderr).toBe(0);
      const app = join(out, "stages/runtime/app");
      expect(r.stdout).toContain(`image tree OK: ${app}`);
      expect((await readdir(app)).sort()).toEqual(["bin", "dist", "node_modules", "package.json"]);
      expect((await stat(join(app, "dist/cli/tenantctl.js"))).isFile()).toBe(true);
      const modules = await readdir(join(app, "node_modules"));
      expect(modules).toContain("zod");
      expect(modules).toContain("prom-client");
      expect(modules).not.toContain("typescript");
      expect(modules).not.toContain("vitest");
    },
  );

  it.each([
    { reason: "an instruction it cannot run", dockerfile: "FROM node:22-slim\nADD . /app\n", error: "instruction ADD is not understood" },
    {
      reason: "a COPY of a path .dockerignore excludes",
      dockerfile: "FROM node:22-slim\nWORKDIR /app\nCOPY tests ./tests\n",
      error: "excluded by .dockerignore",
    },
    {
      reason: "a COPY of a missing file",
      dockerfile: "FROM node:22-slim\nWORKDIR /app\nCOPY nothing-here.json ./\n",
      error: "nothing-here.json does not exist",
    },
    {
      reason: "a final stage running as root",
      dockerfile: 'FROM node:22-slim\nWORKDIR /app\nCOPY package.json ./\nENTRYPOINT ["node"]\n',
      error: "must run as USER node",
    },
    { reason: "a shell-form ENTRYPOINT", dockerfile: "FROM node:22-slim\nENTRYPOINT node bin/tenantctl.js\n", error: "only the exec form" },
  ])("fails on $reason rather than skipping it", async ({ dockerfile, error }) => {
    const path = join(dir, "Dockerfile.broken");
    await writeFile(path, dockerfile);
    const r = await runScript([join(dir, `broken-${Math.random().toString(36).slice(2)}`)], { DOCKERFILE: path });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(error);
  });
});
