#!/usr/bin/env node
import { ConfigError } from "../config.js";
import { UsageError, type Command, type Io } from "./command.js";
import { commands } from "./commands/index.js";

/** tenantctl: the operator's command line. `tenantctl <command> --help` for each command. */
function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "Usage: tenantctl <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `tenantctl <command> --help` for a command's options.",
    "AWS endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL=http://127.0.0.1:4566 for the local default).",
  ].join("\n");
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`tenantctl: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`tenantctl ${name}: ${err.message}\nRun \`tenantctl ${name} --help\` for usage.\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      io.stderr.write(`tenantctl ${name}: ${err.message}\n`);
      return 2;
    }
    io.stderr.write(`tenantctl ${name}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
    return 1;
  }
}

// The SDK warns on Node 20 that releases after January 2027 will need Node 22.
// Our SDK versions are pinned by the lockfile and the image runs Node 22, so
// for a person at a terminal the warning is noise; set the variable to "false" to see it.
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";

// Run when executed directly (bin/tenantctl.js, tsx src/cli/tenantctl.ts), not when imported by tests.
const entry = process.argv[1] ?? "";
if (/tenantctl(\.ts|\.js)?$/.test(entry)) {
  const code = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
  });
  process.exitCode = code;
}
