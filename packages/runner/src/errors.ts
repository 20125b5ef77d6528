import { EXIT_CODES, type ExitCode } from './exit-codes.js';

/**
 * Base class of every error the runner reports. Each subclass carries the exit code of its
 * outcome, so that ECS shows the run as failed and why.
 *
 * @example
 * ```ts
 * import { RunnerError } from '@immortal-lambda/runner';
 * try { await runInvocation(deps); } catch (error) {
 *   if (error instanceof RunnerError) process.exitCode = error.exitCode;
 * }
 * ```
 */
export class RunnerError extends Error {
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RunnerError';
    this.exitCode = exitCode;
  }
}

/**
 * The envelope or the runner's own settings are missing or invalid (exit code 2).
 *
 * @example
 * ```ts
 * import { BadInputError } from '@immortal-lambda/runner';
 * throw new BadInputError('FARGATE_FALLBACK_ENVELOPE is not set');
 * ```
 */
export class BadInputError extends RunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_CODES.badInput, options);
    this.name = 'BadInputError';
  }
}

/**
 * The function's code or a layer could not be fetched, verified or extracted (exit code 3).
 *
 * @example
 * ```ts
 * import { CodeFetchError } from '@immortal-lambda/runner';
 * throw new CodeFetchError('checksum mismatch');
 * ```
 */
export class CodeFetchError extends RunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_CODES.codeFetch, options);
    this.name = 'CodeFetchError';
  }
}

/**
 * An archive entry is unsafe (escapes the target folder, is a link leading out of it) or the
 * archive is larger than allowed (exit code 3).
 *
 * @example
 * ```ts
 * import { UnsafeArchiveError } from '@immortal-lambda/runner';
 * throw new UnsafeArchiveError('entry "../x" leaves the task root');
 * ```
 */
export class UnsafeArchiveError extends RunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_CODES.codeFetch, options);
    this.name = 'UnsafeArchiveError';
  }
}

/**
 * The handler module or its export could not be loaded (exit code 4).
 *
 * @example
 * ```ts
 * import { HandlerLoadError } from '@immortal-lambda/runner';
 * throw new HandlerLoadError('src/index.js has no export "handler"');
 * ```
 */
export class HandlerLoadError extends RunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_CODES.handlerLoad, options);
    this.name = 'HandlerLoadError';
  }
}

/**
 * S3 refused both a read and a listing of one key, so whether the key exists cannot be told: a
 * permission is missing (exit code 2, as bad input: running again cannot help).
 *
 * @example
 * ```ts
 * import { KeyUnknownError } from '@immortal-lambda/runner';
 * const unknown = (error: unknown) => error instanceof KeyUnknownError;
 * ```
 */
export class KeyUnknownError extends BadInputError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyUnknownError';
  }
}
