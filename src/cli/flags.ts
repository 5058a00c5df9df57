import { parseArgs, type ParseArgsConfig } from "node:util";
import type { z } from "zod";
import { UsageError } from "./command.js";

/**
 * Parses argv with node:util and validates the values with a zod schema, so a
 * bad flag is reported by name with what is expected (exit 2).
 */
export function parseFlags<S extends z.ZodType>(
  args: readonly string[],
  options: NonNullable<ParseArgsConfig["options"]>,
  schema: S,
  allowPositionals = false,
): { flags: z.output<S>; positionals: string[] } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals, strict: true, allowNegative: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message.replace(/^.*?: /, "") : String(err));
  }
  const result = schema.safeParse(parsed.values);
  if (!result.success) {
    const issue = result.error.issues[0];
    const flag = issue?.path[0] !== undefined ? `--${String(issue.path[0])}` : "flags";
    throw new UsageError(`${flag}: ${issue?.message ?? "invalid value"}`);
  }
  return { flags: result.data, positionals: parsed.positionals };
}
