import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A tenantctl process started the way a user starts it, with its output collected. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly lines: () => Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  waitForLine(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function spawnCli(args: readonly string[], env: Readonly<Record<string, string>>): CliProcess {
  // node --import tsx runs the CLI in this one process (the tsx binary would put
  // a second node process behind it, which a SIGKILL in a test would not reach).
  const child = spawn(process.execPath, ["--import", "tsx", `${ROOT}src/cli/tenantctl.ts`, ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "/tmp",
      LOG_FORMAT: "json",
      AWS_EC2_METADATA_DISABLED: "true",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const lines = () =>
    out.split("\n").flatMap((l) => {
      try {
        const v: unknown = JSON.parse(l);
        return isRecord(v) ? [v] : [];
      } catch {
        return [];
      }
    });
  return {
    child,
    output: () => out,
    lines,
    exited,
    async waitForLine(pred, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines().find(pred);
        if (hit) return hit;
        if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before the expected line:\n${out}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for a log line:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
