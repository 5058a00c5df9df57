import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `npx tenantctl` in a clone right after `npm ci`: bin/tenantctl.js with no
 * dist/. The test builds such a clone in a temporary directory (bin, src,
 * package.json, and node_modules linked to this checkout's, as npm ci would
 * leave it), so it holds whether or not this checkout has a build.
 */
const ROOT = resolve(import.meta.dirname, "../..");
let clone: string;

beforeAll(async () => {
  clone = await mkdtemp(join(tmpdir(), "tenantctl-clone-"));
  for (const part of ["bin", "src", "package.json", "tsconfig.json"]) await cp(join(ROOT, part), join(clone, part), { recursive: true });
  await symlink(join(ROOT, "node_modules"), join(clone, "node_modules"), "dir");
});

afterAll(async () => {
  if (clone) await rm(clone, { recursive: true, force: true });
});

function runBin(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [join(clone, "bin/tenantctl.js"), ...args], {
      cwd: clone,
      env: {
        PATH: process.env["PATH"] ?? "",
        HOME: process.env["HOME"] ?? "/tmp",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

describe("bin/tenantctl.js", () => {
  it("runs the sources through tsx when there is no dist/ (a fresh clone)", async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    const r = await runBin(["--version"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`tenantctl ${version}\n`);
    expect(r.code).toBe(0);
  });

  it("is the real dispatcher: a mistyped command is a usage error (2) with a suggestion", async () => {
    const r = await runBin(["aply"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "aply": did you mean "apply"?');
  });

  it("prefers dist/ when a build is there, and TENANTCTL_FROM_SOURCE=1 takes the sources anyway", async () => {
    await mkdir(join(clone, "dist/cli"), { recursive: true });
    await writeFile(join(clone, "dist/cli/tenantctl.js"), 'process.stdout.write("from dist\\n");\n');
    try {
      expect((await runBin(["--version"])).stdout).toBe("from dist\n");
      expect((await runBin(["--version"], { TENANTCTL_FROM_SOURCE: "1" })).stdout).toMatch(/^tenantctl \d+\.\d+\.\d+/);
    } finally {
      await rm(join(clone, "dist"), { recursive: true, force: true });
    }
  });
});
