/** One tenantctl subcommand. Each lives in src/cli/commands/<name>.ts. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Full help text, printed by `tenantctl <name> --help`. */
  readonly usage: string;
  /** Returns the exit code. Bad input: a clear message on stderr and a non-zero code. */
  run(args: readonly string[], io: Io): Promise<number>;
}

/** A usage error: printed with the command's usage hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
