import winston from "winston";

export type Logger = winston.Logger;

export interface LoggerOptions {
  level?: string;
  /** "json" for structured lines (default), "pretty" for people at a terminal. */
  format?: "json" | "pretty";
  /** Also append to this file. */
  file?: string;
}

/** Structured logger for one component; every line carries the component name. */
export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.SRLAB_LOG_LEVEL ?? "info";
  const lineFormat =
    options.format === "pretty"
      ? winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf(({ timestamp, level, message, component: c, ...rest }) => {
            const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : "";
            return `${timestamp} ${level} [${c}] ${message}${extra}`;
          }),
        )
      : winston.format.combine(winston.format.timestamp(), winston.format.json());
  const transports: winston.transport[] = [new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug", "verbose", "silly"] })];
  if (options.file) transports.push(new winston.transports.File({ filename: options.file }));
  return winston.createLogger({ level, defaultMeta: { component }, format: lineFormat, transports });
}

/** A logger that drops everything, for tests and embedded use. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
}
