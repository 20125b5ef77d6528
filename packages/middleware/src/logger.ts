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

/** The part of an error that belongs in a log record. */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const record: Record<string, unknown> = { name: error.name, message: error.message };
  if (error.cause !== undefined) record.cause = describeError(error.cause);
  return record;
}
