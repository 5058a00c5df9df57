import { pino, type Logger } from "pino";

/**
 * One logger for the process: JSON lines when the output is a pipe or a file
 * (what log collectors want), pretty lines when a person watches a terminal.
 */
export function createLogger(level: string, options: { pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env["LOG_FORMAT"] !== "json");
  if (pretty) {
    return pino({
      level,
      transport: {
        target: "pino-pretty",
        options: { colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname", destination: 1 },
      },
    });
  }
  return options.destination ? pino({ level }, options.destination) : pino({ level });
}

export type { Logger };
