/**
 * The key under which each error class of these packages declares its kind (the name its errors
 * carry). It is the same symbol in every copy of the packages (`Symbol.for`), so that
 * `instanceof` compares kinds, not class identities, and holds across copies.
 *
 * @example
 * ```ts
 * import { ERROR_KIND, ImmortalLambdaError } from '@immortal-lambda/protocol';
 * class QuotaError extends ImmortalLambdaError {
 *   static override readonly [ERROR_KIND] = 'QuotaError';
 * }
 * new QuotaError('over quota').name; // 'QuotaError'
 * ```
 */
export const ERROR_KIND: unique symbol = Symbol.for('immortal-lambda.error-kind');

interface Kinded {
  [ERROR_KIND]: string;
}

/** Whether `value` was made by `asked`, or by a class of the same kind in another copy. */
function isOfKind(
  asked: (abstract new (...args: never) => unknown) & Partial<Kinded>,
  value: unknown,
): boolean {
  if (Function.prototype[Symbol.hasInstance].call(asked, value)) return true;
  const kind = Object.hasOwn(asked, ERROR_KIND) ? asked[ERROR_KIND] : undefined;
  if (kind === undefined || typeof value !== 'object' || value === null) return false;
  for (let proto = Object.getPrototypeOf(value); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const made = Object.hasOwn(proto, 'constructor') ? (proto.constructor as Partial<Kinded>) : undefined;
    if (made !== undefined && Object.hasOwn(made, ERROR_KIND) && made[ERROR_KIND] === kind) return true;
  }
  return false;
}

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
  /** This class's kind: the name its errors carry. Every subclass declares its own. */
  static readonly [ERROR_KIND]: string = 'ImmortalLambdaError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target[ERROR_KIND];
  }

  /**
   * `error instanceof SomeError` also holds for an error made by another copy of the class: the
   * ESM and CommonJS builds of a package, this package bundled into another (the middleware
   * bundles it), two installed versions. Classes of the same kind are the same class here.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: the class `instanceof` asks about, a subclass as often as not
    return isOfKind(this, value);
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
  static override readonly [ERROR_KIND] = 'EnvelopeError';
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[] = [], options?: { cause?: unknown }) {
    super(
      problems.length > 0 ? `${message}:\n${problems.map((p) => `  - ${p}`).join('\n')}` : message,
      options,
    );
    this.problems = problems;
  }
}
