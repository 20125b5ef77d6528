import { EnvelopeError } from '../errors.js';

/**
 * The protocol version this package writes and reads.
 *
 * @example
 * ```ts
 * import { ENVELOPE_VERSION } from '@immortal-lambda/middleware/protocol';
 * if (document.version !== ENVELOPE_VERSION) throw new Error('use matching releases');
 * ```
 */
export const ENVELOPE_VERSION = 1;

/**
 * Marks a JSON document as an immortal-lambda envelope.
 *
 * @example
 * ```ts
 * import { ENVELOPE_KIND } from '@immortal-lambda/middleware/protocol';
 * const isEnvelope = (value: { kind?: unknown }) => value.kind === ENVELOPE_KIND;
 * ```
 */
export const ENVELOPE_KIND = 'immortal-lambda.envelope';

/**
 * The serialisable part of the Lambda context, as it was in the original invocation.
 *
 * @example
 * ```ts
 * import type { EnvelopeInvocation } from '@immortal-lambda/middleware/protocol';
 * const waited = (i: EnvelopeInvocation) => i.handedOffAt - i.startedAt;
 * ```
 */
export interface EnvelopeInvocation {
  awsRequestId: string;
  invokedFunctionArn: string;
  logGroupName: string;
  logStreamName: string;
  identity?: { cognitoIdentityId: string; cognitoIdentityPoolId: string } | undefined;
  clientContext?: unknown;
  /** The X-Ray trace header of the original invocation (`_X_AMZN_TRACE_ID`). */
  traceHeader?: string | undefined;
  /** When the invocation started, epoch milliseconds. */
  startedAt: number;
  /** When the original invocation would have timed out, epoch milliseconds. */
  deadlineAt: number;
  /** When the handoff began, epoch milliseconds. */
  handedOffAt: number;
}

/**
 * The function whose code the runner must fetch and run.
 *
 * @example
 * ```ts
 * import type { EnvelopeFunction } from '@immortal-lambda/middleware/protocol';
 * const qualified = (f: EnvelopeFunction) => `${f.name}:${f.version}`;
 * ```
 */
export interface EnvelopeFunction {
  name: string;
  /** The exact version that ran (`AWS_LAMBDA_FUNCTION_VERSION`), never an alias. */
  version: string;
  /** The handler string (`_HANDLER`), e.g. `index.handler` or `src/jobs/report.handler`. */
  handler: string;
  memoryLimitInMB: number;
  region?: string | undefined;
}

/**
 * Everything the runner needs to run a handed-off invocation.
 *
 * @example
 * ```ts
 * import type { Envelope } from '@immortal-lambda/middleware/protocol';
 * const describe = (envelope: Envelope) => `${envelope.function.name}:${envelope.function.version}`;
 * ```
 */
export interface Envelope {
  kind: typeof ENVELOPE_KIND;
  version: typeof ENVELOPE_VERSION;
  function: EnvelopeFunction;
  invocation: EnvelopeInvocation;
  event: unknown;
}

/**
 * What {@link createEnvelope} needs.
 *
 * @example
 * ```ts
 * import type { EnvelopeInput } from '@immortal-lambda/middleware/protocol';
 * const input: EnvelopeInput = { event, context, env: process.env, startedAt, deadlineAt, handedOffAt: Date.now() };
 * ```
 */
export interface EnvelopeInput {
  event: unknown;
  context: {
    awsRequestId: string;
    functionName: string;
    functionVersion?: string;
    invokedFunctionArn: string;
    memoryLimitInMB: string | number;
    logGroupName: string;
    logStreamName: string;
    identity?: { cognitoIdentityId: string; cognitoIdentityPoolId: string } | null | undefined;
    clientContext?: unknown;
  };
  /** The Lambda environment: `AWS_LAMBDA_FUNCTION_VERSION`, `_HANDLER`, `_X_AMZN_TRACE_ID`, `AWS_REGION`. */
  env: Readonly<Record<string, string | undefined>>;
  startedAt: number;
  deadlineAt: number;
  handedOffAt: number;
}

/**
 * Builds the envelope for a handoff from the event, the context and the Lambda environment.
 *
 * @example
 * ```ts
 * import { createEnvelope } from '@immortal-lambda/middleware/protocol';
 * const envelope = createEnvelope({
 *   event, context, env: process.env,
 *   startedAt, deadlineAt: Date.now() + context.getRemainingTimeInMillis(), handedOffAt: Date.now(),
 * });
 * ```
 */
export function createEnvelope(input: EnvelopeInput): Envelope {
  const { context, env } = input;
  const memory = Number(context.memoryLimitInMB);
  const invocation: EnvelopeInvocation = {
    awsRequestId: context.awsRequestId,
    invokedFunctionArn: context.invokedFunctionArn,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    startedAt: input.startedAt,
    deadlineAt: input.deadlineAt,
    handedOffAt: input.handedOffAt,
  };
  // Outside mobile SDK invocations Lambda leaves these undefined; some harnesses set null.
  if (context.identity != null && typeof context.identity === 'object')
    invocation.identity = context.identity;
  if (context.clientContext != null) invocation.clientContext = context.clientContext;
  const traceHeader = env._X_AMZN_TRACE_ID;
  if (traceHeader) invocation.traceHeader = traceHeader;
  const fn: EnvelopeFunction = {
    name: context.functionName,
    version: env.AWS_LAMBDA_FUNCTION_VERSION || context.functionVersion || '$LATEST',
    handler: env._HANDLER ?? '',
    memoryLimitInMB: Number.isFinite(memory) ? memory : 0,
  };
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (region) fn.region = region;
  return {
    kind: ENVELOPE_KIND,
    version: ENVELOPE_VERSION,
    function: fn,
    invocation,
    event: input.event ?? null,
  };
}

/**
 * Serialises an envelope to JSON. Throws {@link EnvelopeError} when the event cannot be
 * serialised (a `BigInt`, a circular structure), naming the reason.
 *
 * @example
 * ```ts
 * import { serializeEnvelope } from '@immortal-lambda/middleware/protocol';
 * const json = serializeEnvelope(envelope);
 * ```
 */
export function serializeEnvelope(envelope: Envelope): string {
  try {
    return JSON.stringify(envelope);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new EnvelopeError(
      `the event cannot be serialised to JSON (${detail}); a handed-off invocation must carry a JSON event, so convert BigInt values and break circular references before the deadline`,
      [],
      { cause: error },
    );
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Validates a parsed envelope and returns it typed. Throws {@link EnvelopeError} listing every
 * field that is missing or of the wrong type, or naming an unknown protocol version.
 *
 * @example
 * ```ts
 * import { validateEnvelope } from '@immortal-lambda/middleware/protocol';
 * const envelope = validateEnvelope(JSON.parse(text));
 * ```
 */
export function validateEnvelope(value: unknown): Envelope {
  if (!isRecord(value)) {
    throw new EnvelopeError('the envelope is not a JSON object');
  }
  if (value.kind !== ENVELOPE_KIND) {
    throw new EnvelopeError(
      `the document is not an immortal-lambda envelope (kind is ${JSON.stringify(value.kind)}, expected "${ENVELOPE_KIND}")`,
    );
  }
  if (value.version !== ENVELOPE_VERSION) {
    throw new EnvelopeError(
      `unknown envelope version ${JSON.stringify(value.version)}: this runner reads version ${ENVELOPE_VERSION}; use a runner image and middleware from the same release`,
    );
  }
  const problems: string[] = [];
  const fn = value.function;
  const invocation = value.invocation;
  const text = (where: Record<string, unknown>, path: string, key: string, allowEmpty = false) => {
    const field = where[key];
    if (typeof field !== 'string' || (!allowEmpty && field.length === 0)) {
      problems.push(`${path}.${key} must be a ${allowEmpty ? '' : 'non-empty '}string`);
    }
  };
  const number = (where: Record<string, unknown>, path: string, key: string) => {
    if (typeof where[key] !== 'number' || !Number.isFinite(where[key]))
      problems.push(`${path}.${key} must be a number`);
  };
  if (!isRecord(fn)) {
    problems.push('function must be an object');
  } else {
    text(fn, 'function', 'name');
    text(fn, 'function', 'version');
    text(fn, 'function', 'handler');
    number(fn, 'function', 'memoryLimitInMB');
    if (fn.region !== undefined) text(fn, 'function', 'region');
  }
  if (!isRecord(invocation)) {
    problems.push('invocation must be an object');
  } else {
    text(invocation, 'invocation', 'awsRequestId');
    text(invocation, 'invocation', 'invokedFunctionArn');
    text(invocation, 'invocation', 'logGroupName', true);
    text(invocation, 'invocation', 'logStreamName', true);
    number(invocation, 'invocation', 'startedAt');
    number(invocation, 'invocation', 'deadlineAt');
    number(invocation, 'invocation', 'handedOffAt');
    if (invocation.traceHeader !== undefined) text(invocation, 'invocation', 'traceHeader');
    if (invocation.identity !== undefined && !isRecord(invocation.identity)) {
      problems.push('invocation.identity must be an object when present');
    }
  }
  if (!('event' in value)) problems.push('event is missing');
  if (problems.length > 0) throw new EnvelopeError('the envelope is invalid', problems);
  return value as unknown as Envelope;
}

/**
 * Parses and validates envelope JSON. Throws {@link EnvelopeError} for text that is not JSON and
 * for any envelope {@link validateEnvelope} rejects.
 *
 * @example
 * ```ts
 * import { parseEnvelope } from '@immortal-lambda/middleware/protocol';
 * const { event, invocation } = parseEnvelope(json);
 * ```
 */
export function parseEnvelope(text: string): Envelope {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const preview = text.length > 60 ? `${text.slice(0, 60)}…` : text;
    throw new EnvelopeError(
      `the envelope is not valid JSON (${error instanceof Error ? error.message : String(error)}); it starts with ${JSON.stringify(preview)}`,
      [],
      { cause: error },
    );
  }
  return validateEnvelope(value);
}
