import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import type { Logger } from "pino";

/**
 * moto_server as a child process on a free loopback port: started, waited
 * for, and stopped on demand or when this process ends (exit, SIGINT,
 * SIGTERM), so nothing is left running. It runs in its own process group so
 * a Ctrl-C reaches our handlers first (the controller can shut down cleanly
 * while moto still answers) and a stop takes down anything moto spawned.
 */

export const MOTO_NOT_FOUND = "moto_server not found: pip install 'moto[server]'";

export class MotoNotFoundError extends Error {
  constructor(readonly bin: string) {
    super(bin === "moto_server" ? MOTO_NOT_FOUND : `${MOTO_NOT_FOUND} (MOTO_SERVER_BIN=${bin})`);
    this.name = "MotoNotFoundError";
  }
}

export interface MotoProcess {
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  /** Idempotent; resolves once the process has exited. */
  stop(): Promise<void>;
}

export interface MotoProcessOptions {
  /** @default env MOTO_SERVER_BIN, else "moto_server" */
  readonly bin?: string;
  /** @default a free port */
  readonly port?: number;
  /** @default 30000 */
  readonly startTimeoutMs?: number;
  readonly log?: Logger;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; another process could still take it before we bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startMotoProcess(options: MotoProcessOptions = {}): Promise<MotoProcess> {
  const bin = options.bin ?? process.env["MOTO_SERVER_BIN"] ?? "moto_server";
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ["-H", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"], detached: true });

  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    // Werkzeug logs every request on stderr; keep only the tail for error messages.
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const cleanup = registerCleanup(child);
  const stop = onceAsync(async () => {
    cleanup.unregister();
    await terminate(child);
  });

  try {
    await waitUntilAnswering(endpoint, child, spawnError, bin, () => stderr, options.startTimeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  options.log?.debug({ pid: child.pid, endpoint }, "moto_server started");
  return { endpoint, port, pid: child.pid ?? -1, stop };
}

async function waitUntilAnswering(
  endpoint: string,
  child: ChildProcess,
  spawnError: Promise<Error>,
  bin: string,
  stderr: () => string,
  timeoutMs: number,
): Promise<void> {
  let failed: Error | undefined;
  void spawnError.then((err) => (failed = err));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (failed !== undefined) {
      if ((failed as NodeJS.ErrnoException).code === "ENOENT") throw new MotoNotFoundError(bin);
      throw new Error(`cannot start ${bin}: ${failed.message}`, { cause: failed });
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      // A shell or pyenv shim reports a missing program with status 127.
      if (child.exitCode === 127) throw new MotoNotFoundError(bin);
      throw new Error(`${bin} exited (${child.exitCode ?? child.signalCode}) before answering: ${stderr().trim()}`);
    }
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status < 500) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${bin} did not answer on ${endpoint} within ${timeoutMs} ms: ${stderr().trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM to the whole group, SIGKILL if it lingers. */
function terminate(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const pid = child.pid;
  return new Promise((resolve) => {
    const killer = setTimeout(() => signalGroup(pid, "SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(killer);
      resolve();
    });
    signalGroup(pid, "SIGTERM");
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Kills every live moto group when this process exits. On SIGINT/SIGTERM: if
 * someone else also handles the signal, they own the shutdown (stop() or exit
 * follows); if only we listen, kill moto and re-raise the signal so the
 * default behaviour (terminate) still happens. One set of handlers serves all
 * moto processes, so starting two does not make each defer to the other.
 */
const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) signalGroup(child.pid, "SIGTERM");
  }
}

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  killAll();
  live.clear();
  uninstall();
  process.kill(process.pid, signal);
}

function install(): void {
  if (process.listeners("exit").includes(killAll)) return;
  process.on("exit", killAll);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

function uninstall(): void {
  process.off("exit", killAll);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}

function registerCleanup(child: ChildProcess): { unregister(): void } {
  live.add(child);
  install();
  return {
    unregister: () => {
      live.delete(child);
      if (live.size === 0) uninstall();
    },
  };
}

function onceAsync(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
