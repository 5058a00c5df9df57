#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { z } from "zod";
import { ConfigError } from "../config.js";
import { didYouMean } from "../suggest.js";
import { UsageError, type Command, type Io } from "./command.js";
import { commands } from "./commands/index.js";
import { setupHint } from "./client-config.js";

/** tenantctl: the operator's command line. `tenantctl <command> --help` for each command. */
function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "Usage: tenantctl <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `tenantctl <command> --help` for a command's options; `tenantctl --version` for the version.",
    "AWS endpoint, region and credentials come from the environment and your AWS profile, as for the AWS CLI",
    "(AWS_ENDPOINT_URL=http://127.0.0.1:4566 for the local default; AWS_REGION, AWS_DEFAULT_REGION or the profile's region).",
    "Exit codes: 0 done, 1 failed, 2 a usage or configuration error.",
  ].join("\n");
}

/**
 * The package's version: package.json sits two levels above this file both
 * in src/cli (a clone, through tsx) and in dist/cli (the build, the image).
 */
export function version(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return z.object({ version: z.string() }).parse(JSON.parse(text)).version;
}

/** Exit codes: 0 done, 1 failed (AWS, a bad record, a timeout), 2 a usage or configuration error. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "version") {
    io.stdout.write(`tenantctl ${version()}\n`);
    return 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    const what = name.startsWith("-") ? "option" : "command";
    const hint = didYouMean(name, [...commands.map((c) => c.name), "--help", "--version"]);
    io.stderr.write(`tenantctl: unknown ${what} "${name}"${hint}\nRun \`tenantctl --help\` for the commands.\n`);
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
    // A setup problem (no endpoint, no credentials) gets its fix rather than the SDK's words.
    const hint = setupHint(err, { endpoint: io.env["AWS_ENDPOINT_URL"] || undefined, region: io.env["AWS_REGION"] || undefined });
    io.stderr.write(`tenantctl ${name}: ${hint ?? (err instanceof Error ? `${err.name}: ${err.message}` : String(err))}\n`);
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
