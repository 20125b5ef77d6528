/**
 * Base class of the local control plane's own errors (set-up mistakes, not API answers).
 *
 * @example
 * ```ts
 * import { LocalPlaneError, LocalControlPlane } from '@immortal-lambda/local';
 * try { await plane.start({ port: 4566 }); } catch (error) {
 *   if (error instanceof LocalPlaneError) console.error(error.message);
 * }
 * ```
 */
export class LocalPlaneError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LocalPlaneError';
  }
}

/**
 * A function or layer cannot be registered: its folder or handler file does not exist.
 *
 * @example
 * ```ts
 * import { RegistrationError } from '@immortal-lambda/local';
 * try { plane.registerFunction({ name: 'report', folder: 'dist/report', handler: 'index.handler' }); }
 * catch (error) { if (error instanceof RegistrationError) console.error(error.message); }
 * ```
 */
export class RegistrationError extends LocalPlaneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistrationError';
  }
}

/**
 * An AWS API error, answered in the service's wire format.
 *
 * @example
 * ```ts
 * import { ApiError } from '@immortal-lambda/local';
 * throw new ApiError('ThrottlingException', 'Rate exceeded');
 * ```
 */
export class ApiError extends Error {
  readonly type: string;
  readonly status: number;
  /** More members of the error's body, as the service sends them (ConflictException's `resourceIds`). */
  readonly fields: Record<string, unknown>;

  constructor(type: string, message: string, status = 400, fields: Record<string, unknown> = {}) {
    super(message);
    this.name = type;
    this.type = type;
    this.status = status;
    this.fields = fields;
  }
}
