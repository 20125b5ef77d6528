import type { FallbackLogger } from './types.js';

const line = (level: 'INFO' | 'ERROR', message: string, attributes: Record<string, unknown>) =>
  JSON.stringify({
    level,
    message,
    timestamp: new Date().toISOString(),
    service: 'immortal-lambda',
    ...attributes,
  });

/** Writes one JSON line per record, INFO to stdout and ERROR to stderr, as Lambda captures them. */
export const jsonLogger: FallbackLogger = {
  info: (message, attributes) => {
    console.info(line('INFO', message, attributes));
  },
  error: (message, attributes) => {
    console.error(line('ERROR', message, attributes));
  },
};

/** A logger made safe by {@link isolatedLogger}: it always has `warn` (the user's, else `error`). */
export type IsolatedLogger = Required<FallbackLogger>;

/**
 * The user's logger, made safe to call: a logger that throws must never turn a confirmed
 * handoff into a failed invocation (its task would run on while Lambda records a failure).
 * What the logger threw is written to stderr instead.
 */
export function isolatedLogger(logger: FallbackLogger): IsolatedLogger {
  const guard =
    (call: (message: string, attributes: Record<string, unknown>) => void) =>
    (message: string, attributes: Record<string, unknown>) => {
      try {
        call(message, attributes);
      } catch (error) {
        try {
          console.error(
            line('ERROR', 'The logger given to immortal-lambda threw; its record follows', {
              record: { message, ...attributes },
              error: describeError(error),
            }),
          );
        } catch {
          // Nothing is left to report with.
        }
      }
    };
  const warn = logger.warn ?? logger.error;
  return {
    info: guard((message, attributes) => logger.info(message, attributes)),
    error: guard((message, attributes) => logger.error(message, attributes)),
    warn: guard((message, attributes) => warn.call(logger, message, attributes)),
  };
}

/** The part of an error that belongs in a log record. */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const record: Record<string, unknown> = { name: error.name, message: error.message };
  if (error.cause !== undefined) record.cause = describeError(error.cause);
  return record;
}
