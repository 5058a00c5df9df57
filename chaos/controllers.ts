import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import { baseChildEnv, ROOT, TENANTCTL } from "./cloud.js";

/**
 * `tenantctl controller` processes, each a separate child started as the
 * container starts it (node --import tsx, so a SIGKILL reaches the
 * controller itself and no wrapper). Each one's log goes to its own file;
 * the few lines a chaos run times (started, leader acquired, reconciled,
 * lease lost) are kept with their pino timestamps.
 */
export interface ControllerProcess {
  readonly holder: string;
  readonly child: ChildProcess;
  readonly spawnedAt: number;
  /** The HTTP port it reported (HTTP_PORT=0 lets it pick), once started. */
  httpPort: number | undefined;
  startedAt: number | undefined;
  /** Each time it acquired the lease. */
  readonly acquiredAt: number[];
  /** Each time it went back to standby after leading. */
  readonly lostAt: number[];
  /** End times of its reconciles, by key. */
  readonly reconciles: { readonly at: number; readonly key: string }[];
  killedAt: number | undefined;
  readonly exited: Promise<number | null>;
  alive(): boolean;
  /** kill -9: no chance to release the lease or finish anything. */
  kill9(): number;
  /** SIGTERM, the graceful stop; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface FleetOptions {
  readonly env: Readonly<Record<string, string>>;
  readonly logDir: string;
  readonly leaseSeconds: number;
  /** Extra variables for every controller (CONCURRENCY, RESYNC_SECONDS...). */
  readonly extraEnv?: Readonly<Record<string, string>>;
}

/** Messages the run times; every other line only goes to the file. */
const TIMED = new Set(["controller started", "acquired leader lease; starting reconcilers", "not leader; standing by", "reconciled"]);

export class ControllerFleet {
  readonly #o: FleetOptions;
  readonly all: ControllerProcess[] = [];
  #generation = 0;

  constructor(options: FleetOptions) {
    this.#o = options;
  }

  live(): ControllerProcess[] {
    return this.all.filter((c) => c.alive());
  }

  spawn(name = "c"): ControllerProcess {
    const holder = `chaos-${name}-${this.#generation++}`;
    const file: WriteStream = createWriteStream(join(this.#o.logDir, `${holder}.log`));
    const child = spawn(process.execPath, ["--import", "tsx", TENANTCTL, "controller"], {
      cwd: ROOT,
      env: {
        ...baseChildEnv(),
        ...this.#o.env,
        ...this.#o.extraEnv,
        HOLDER_ID: holder,
        HTTP_PORT: "0",
        LEASE_SECONDS: String(this.#o.leaseSeconds),
        // "reconciled" is a debug line, and it is what a takeover is timed by.
        LOG_LEVEL: "debug",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const proc: ControllerProcess = {
      holder,
      child,
      spawnedAt: Date.now(),
      httpPort: undefined,
      startedAt: undefined,
      acquiredAt: [],
      lostAt: [],
      reconciles: [],
      killedAt: undefined,
      exited,
      alive: () => child.exitCode === null && child.signalCode === null && proc.killedAt === undefined,
      kill9: () => {
        const at = Date.now();
        proc.killedAt = at;
        child.kill("SIGKILL");
        return at;
      },
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 40_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    };
    let partial = "";
    const onData = (d: Buffer) => {
      file.write(d);
      const text = partial + d.toString();
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) this.#note(proc, line);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (d: Buffer) => file.write(d));
    void exited.then(() => file.end());
    this.all.push(proc);
    return proc;
  }

  #note(proc: ControllerProcess, line: string): void {
    if (!line.startsWith("{")) return;
    let entry: { msg?: unknown; time?: unknown; httpPort?: unknown; key?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    if (typeof entry.msg !== "string" || !TIMED.has(entry.msg)) return;
    const at = typeof entry.time === "number" ? entry.time : Date.now();
    switch (entry.msg) {
      case "controller started":
        proc.startedAt = at;
        if (typeof entry.httpPort === "number") proc.httpPort = entry.httpPort;
        return;
      case "acquired leader lease; starting reconcilers":
        proc.acquiredAt.push(at);
        return;
      case "not leader; standing by":
        proc.lostAt.push(at);
        return;
      case "reconciled":
        proc.reconciles.push({ at, key: typeof entry.key === "string" ? entry.key : "" });
        return;
    }
  }

  /** Waits for a controller to lead; the first acquisition after `since`. */
  async waitForLeader(since: number, timeoutMs: number): Promise<{ proc: ControllerProcess; acquiredAt: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const proc of this.all) {
        const at = proc.acquiredAt.find((t) => t >= since);
        if (at !== undefined && proc.alive()) return { proc, acquiredAt: at };
      }
      if (Date.now() > deadline) throw new Error(`no controller acquired the lease within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** Waits for the first reconcile `proc` finished at or after `since`. */
  async waitForReconcile(proc: ControllerProcess, since: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = proc.reconciles.find((r) => r.at >= since);
      if (hit !== undefined) return hit.at;
      if (!proc.alive()) throw new Error(`${proc.holder} exited before its first reconcile`);
      if (Date.now() > deadline) throw new Error(`${proc.holder} finished no reconcile within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** Reads tenant_operator_leader from each live controller's /metrics: how many say they lead. */
  async leadersNow(): Promise<string[]> {
    const leaders: string[] = [];
    for (const proc of this.live()) {
      if (proc.httpPort === undefined) continue;
      try {
        const res = await fetch(`http://127.0.0.1:${proc.httpPort}/metrics`);
        const text = await res.text();
        if (/^tenant_operator_leader 1$/m.test(text)) leaders.push(proc.holder);
      } catch {
        /* exiting or not serving yet: not a leader it can tell us about */
      }
    }
    return leaders;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.filter((c) => c.alive()).map((c) => c.stop()));
  }

  /** Leaves nothing behind, however the run ends. */
  killAll(): void {
    for (const c of this.all) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
