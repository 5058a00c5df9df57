import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { join } from "node:path";

/**
 * A V8 CPU profile of one phase of the scale benchmark (`--cpu-profile DIR`),
 * written as DIR/<phase>.cpuprofile for Chrome DevTools or speedscope: where
 * a no-op reconcile's time goes, without the start-up and the other phase.
 */
export class PhaseProfiler {
  readonly #dir: string | undefined;
  #session: Session | undefined;

  constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  async start(): Promise<void> {
    if (this.#dir === undefined) return;
    this.#session = new Session();
    this.#session.connect();
    await this.#session.post("Profiler.enable");
    await this.#session.post("Profiler.start");
  }

  /** Stops and writes the profile; returns its path (undefined when not profiling). */
  async stop(phase: string): Promise<string | undefined> {
    const session = this.#session;
    if (session === undefined || this.#dir === undefined) return undefined;
    this.#session = undefined;
    const { profile } = await session.post("Profiler.stop");
    session.disconnect();
    const path = join(this.#dir, `${phase}.cpuprofile`);
    await writeFile(path, JSON.stringify(profile));
    return path;
  }
}
