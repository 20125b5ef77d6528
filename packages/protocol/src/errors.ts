/**
 * Base class of every error the immortal-lambda packages throw. Catch it to handle all of them
 * at once.
 *
 * @example
 * ```ts
 * import { ImmortalLambdaError } from '@immortal-lambda/protocol';
 * try {
 *   await handler(event, context);
 * } catch (error) {
 *   if (error instanceof ImmortalLambdaError) console.error(error.name, error.message);
 * }
 * ```
 */
export class ImmortalLambdaError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImmortalLambdaError';
  }
}

/**
 * An envelope could not be written or read: it is not JSON, has an unknown protocol version, or
 * lacks a field. `problems` lists every field that failed validation.
 *
 * @example
 * ```ts
 * import { EnvelopeError, parseEnvelope } from '@immortal-lambda/protocol';
 * try {
 *   parseEnvelope(process.env.FARGATE_FALLBACK_ENVELOPE ?? '');
 * } catch (error) {
 *   if (error instanceof EnvelopeError) console.error(error.problems);
 * }
 * ```
 */
export class EnvelopeError extends ImmortalLambdaError {
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[] = [], options?: { cause?: unknown }) {
    super(
      problems.length > 0 ? `${message}:\n${problems.map((p) => `  - ${p}`).join('\n')}` : message,
      options,
    );
    this.name = 'EnvelopeError';
    this.problems = problems;
  }
}
