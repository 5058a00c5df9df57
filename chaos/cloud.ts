import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseExportLine } from "../src/cli/commands/local.js";
import { loadConfig, type Config } from "../src/config.js";
import type { FaultRule, SchedulerSnapshot } from "../src/localcloud/index.js";
import { createAwsClients, type AwsClients } from "../src/providers/aws-clients.js";

/**
 * The local AWS of a chaos run, started the way a person starts it for
 * controllers run apart: `tenantctl local --no-controller` as a child
 * process (docs/design.md "Contract: running it"). Everything the run knows
 * about the account comes from the `export ...` line it prints; faults and
 * throttling are set through the local ECS scheduler's control API on the
 * same endpoint, as any client of it would.
 */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const TENANTCTL = `${ROOT}src/cli/tenantctl.ts`;

export interface ChaosCloudOptions {
  /** Simulated ECS time per real time. @default 10 */
  readonly speed?: number;
  /** Where the local AWS's own output goes (appended); none when undefined. */
  readonly logFile?: string;
  /** Give up waiting for the export line after this long. @default 120000 */
  readonly startTimeoutMs?: number;
}

export interface ChaosCloud {
  readonly endpoint: string;
  /** The printed export line, parsed: all a `tenantctl controller` needs. */
  readonly env: Readonly<Record<string, string>>;
  readonly config: Config;
  /** SDK clients for the runner and the auditor, patient with injected faults. */
  readonly clients: AwsClients;
  setFaults(rules: readonly FaultRule[]): Promise<void>;
  setThrottling(enabled: boolean): Promise<void>;
  state(): Promise<SchedulerSnapshot>;
  stop(): Promise<void>;
}

/** The environment a child of the runner starts from: no profile, no instance metadata lookups (loopback only). */
export function baseChildEnv(): Record<string, string> {
  return {
    PATH: process.env["PATH"] ?? "",
    HOME: process.env["HOME"] ?? "/tmp",
    LOG_FORMAT: "json",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    ...(process.env["MOTO_SERVER_BIN"] !== undefined ? { MOTO_SERVER_BIN: process.env["MOTO_SERVER_BIN"] } : {}),
  };
}

export async function startChaosCloud(options: ChaosCloudOptions = {}): Promise<ChaosCloud> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      TENANTCTL,
      "local",
      "--no-controller",
      "--no-demo",
      "--no-view",
      "--port",
      "0",
      "--speed",
      String(options.speed ?? 10),
    ],
    { cwd: ROOT, env: { ...baseChildEnv(), LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const log: WriteStream | undefined = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: "a" });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const collect = (d: Buffer) => {
    log?.write(d);
    // Only the first screenful is needed (the export line); keep memory flat after it.
    if (out.length < 64_000) out += d.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  try {
    const env = await waitForExportLine(child, () => out, options.startTimeoutMs ?? 120_000);
    const config = loadConfig(env);
    const endpoint = config.endpoint ?? "";
    // The SDK's default credential chain must find the throwaway credentials; nothing else is to be looked up.
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) process.env[k] ??= env[k];
    process.env["AWS_EC2_METADATA_DISABLED"] = "true";
    delete process.env["AWS_PROFILE"];
    // The runner's own SDK calls meet the same faults as the controllers'; ten attempts ride through them.
    const clients = createAwsClients(config, undefined, { retryMode: "standard", maxAttempts: 10 });
    const control = async (method: "GET" | "POST", path: string, body?: unknown): Promise<unknown> => {
      const res = await fetch(`${endpoint}/_scheduler/${path}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`local scheduler ${method} ${path}: HTTP ${res.status} ${text}`);
      return JSON.parse(text) as unknown;
    };
    let stopping: Promise<void> | undefined;
    return {
      endpoint,
      env,
      config,
      clients,
      setFaults: async (rules) => void (await control("POST", "faults", rules)),
      setThrottling: async (enabled) => void (await control("POST", "throttling", { enabled })),
      state: async () => (await control("GET", "state")) as SchedulerSnapshot,
      stop: () =>
        (stopping ??= (async () => {
          clients.destroy();
          await stopChild(child, exited);
          log?.end();
        })()),
    };
  } catch (err) {
    await stopChild(child, exited);
    log?.end();
    throw err;
  }
}

async function waitForExportLine(child: ChildProcess, output: () => string, timeoutMs: number): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = output();
    // The line is complete once the text after it has arrived too.
    if (text.includes("Ctrl-C stops everything")) {
      const env = parseExportLine(text);
      if (env === undefined) throw new Error(`tenantctl local printed no export line:\n${text}`);
      return env;
    }
    if (child.exitCode !== null) throw new Error(`tenantctl local exited (${child.exitCode}) before it was ready:\n${text}`);
    if (Date.now() > deadline) throw new Error(`tenantctl local was not ready within ${timeoutMs} ms:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM (the local run stops moto itself), then SIGKILL if it lingers. */
async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}
