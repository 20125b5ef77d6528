import { EnvelopeError } from './errors.js';
import type { Journal } from './journal.js';

/**
 * The protocol version this package writes and reads.
 *
 * @example
 * ```ts
 * import { ENVELOPE_VERSION } from '@immortal-lambda/protocol';
 * if (document.version !== ENVELOPE_VERSION) throw new Error('use matching releases');
 * ```
 */
export const ENVELOPE_VERSION = 1;

/**
 * Marks a JSON document as an immortal-lambda envelope.
 *
 * @example
 * ```ts
 * import { ENVELOPE_KIND } from '@immortal-lambda/protocol';
 * const isEnvelope = (value: { kind?: unknown }) => value.kind === ENVELOPE_KIND;
 * ```
 */
export const ENVELOPE_KIND = 'immortal-lambda.envelope';

/**
 * The serialisable part of the Lambda context, as it was in the original invocation.
 *
 * @example
 * ```ts
 * import type { EnvelopeInvocation } from '@immortal-lambda/protocol';
 * const waited = (i: EnvelopeInvocation) => i.handedOffAt - i.startedAt;
 * ```
 */
export interface EnvelopeInvocation {
  awsRequestId: string;
  invokedFunctionArn: string;
  /** Lambda's log group; absent when the invoking context had none (some harnesses). */
  logGroupName?: string | undefined;
  /** Lambda's log stream; absent when the invoking context had none. */
  logStreamName?: string | undefined;
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
 * import type { EnvelopeFunction } from '@immortal-lambda/protocol';
 * const qualified = (f: EnvelopeFunction) => `${f.name}:${f.version}`;
 * ```
 */
export interface EnvelopeFunction {
  name: string;
  /** The exact version that ran (`AWS_LAMBDA_FUNCTION_VERSION`), never an alias. */
  version: string;
  /**
   * The handler string (`_HANDLER`), e.g. `index.handler` or `src/jobs/report.handler`. Absent
   * when `_HANDLER` was unset where the handoff ran: the runner then uses the handler of the
   * function's configuration (GetFunction's `Handler`).
   */
  handler?: string | undefined;
  memoryLimitInMB: number;
  region?: string | undefined;
}

/**
 * Everything the runner needs to run a handed-off invocation.
 *
 * @example
 * ```ts
 * import type { Envelope } from '@immortal-lambda/protocol';
 * const describe = (envelope: Envelope) => `${envelope.function.name}:${envelope.function.version}`;
 * ```
 */
export interface Envelope {
  kind: typeof ENVELOPE_KIND;
  version: typeof ENVELOPE_VERSION;
  function: EnvelopeFunction;
  invocation: EnvelopeInvocation;
  event: unknown;
  /**
   * The steps the handler finished and its last checkpoint when the handoff began; absent when it
   * used neither. The runner answers those steps from here instead of running them again.
   */
  journal?: Journal;
  /**
   * `sqs`: the wrapper answered this SQS batch as failed, so that Lambda deleted none of it; the
   * runner keeps its messages invisible while it works, deletes those it finished and hands the
   * ones the handler failed back to SQS (see `sqs-hold.ts`).
   */
  held?: 'sqs';
}

/**
 * What {@link createEnvelope} needs.
 *
 * @example
 * ```ts
 * import type { EnvelopeInput } from '@immortal-lambda/protocol';
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
    logGroupName?: string | undefined;
    logStreamName?: string | undefined;
    identity?: { cognitoIdentityId: string; cognitoIdentityPoolId: string } | null | undefined;
    clientContext?: unknown;
  };
  /** The Lambda environment: `AWS_LAMBDA_FUNCTION_VERSION`, `_HANDLER`, `_X_AMZN_TRACE_ID`, `AWS_REGION`. */
  env: Readonly<Record<string, string | undefined>>;
  startedAt: number;
  deadlineAt: number;
  handedOffAt: number;
  /** What the handler has done so far (its finished steps and last checkpoint), if anything. */
  journal?: Journal | undefined;
}

/**
 * Builds the envelope for a handoff from the event, the context and the Lambda environment.
 *
 * @example
 * ```ts
 * import { createEnvelope } from '@immortal-lambda/protocol';
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
    startedAt: input.startedAt,
    deadlineAt: input.deadlineAt,
    handedOffAt: input.handedOffAt,
  };
  if (typeof context.logGroupName === 'string') invocation.logGroupName = context.logGroupName;
  if (typeof context.logStreamName === 'string') invocation.logStreamName = context.logStreamName;
  // Outside mobile SDK invocations Lambda leaves these undefined; some harnesses set null.
  if (context.identity != null) invocation.identity = context.identity;
  if (context.clientContext != null) invocation.clientContext = context.clientContext;
  const traceHeader = env._X_AMZN_TRACE_ID;
  if (traceHeader) invocation.traceHeader = traceHeader;
  const fn: EnvelopeFunction = {
    name: context.functionName,
    version: env.AWS_LAMBDA_FUNCTION_VERSION || context.functionVersion || '$LATEST',
    memoryLimitInMB: Number.isFinite(memory) ? memory : 0,
  };
  if (env._HANDLER) fn.handler = env._HANDLER;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (region) fn.region = region;
  return {
    kind: ENVELOPE_KIND,
    version: ENVELOPE_VERSION,
    function: fn,
    invocation,
    event: input.event ?? null,
    ...(input.journal ? { journal: input.journal } : {}),
  };
}

/**
 * Serialises an envelope to JSON. Throws {@link EnvelopeError} when the event cannot be
 * serialised (a `BigInt`, a circular structure), naming the reason.
 *
 * @example
 * ```ts
 * import { serializeEnvelope } from '@immortal-lambda/protocol';
 * const json = serializeEnvelope(envelope);
 * ```
 */
export function serializeEnvelope(envelope: Envelope): string {
  try {
    return JSON.stringify(envelope);
  } catch (error) {
    // Name the part that failed: the event, or a context field.
    const parts: [string, unknown][] = [
      ['the event', envelope.event],
      ['context.identity', envelope.invocation.identity],
      ['context.clientContext', envelope.invocation.clientContext],
    ];
    const culprit = parts.find(([, value]) => {
      try {
        JSON.stringify(value);
        return false;
      } catch {
        return true;
      }
    });
    const what = culprit?.[0] ?? 'the envelope';
    const detail = error instanceof Error ? error.message : String(error);
    throw new EnvelopeError(
      `${what} cannot be serialised to JSON (${detail}); a handed-off invocation must carry JSON, so convert BigInt values and break circular references before the deadline`,
      [],
      { cause: error },
    );
  }
}

/**
 * Serialises an envelope and validates the JSON exactly as the runner will read it, so that
 * the writer never sends what the reader refuses. Throws {@link EnvelopeError}: for a part that
 * cannot be serialised, for an event that JSON cannot carry at all (a function, a Symbol, a
 * `toJSON()` returning `undefined`), and for every field the runner would reject.
 *
 * @example
 * ```ts
 * import { createEnvelope, encodeEnvelope } from '@immortal-lambda/protocol';
 * const json = encodeEnvelope(createEnvelope(input)); // what RunTask's override or S3 carries
 * ```
 */
export function encodeEnvelope(envelope: Envelope): string {
  const json = serializeEnvelope(envelope);
  const parsed = JSON.parse(json) as Record<string, unknown>;
  if (!('event' in parsed)) {
    throw new EnvelopeError(
      `the event cannot be carried: it is ${typeof envelope.event === 'function' ? 'a function' : typeof envelope.event === 'symbol' ? 'a Symbol' : 'a value whose toJSON() returns undefined'}, which JSON drops; pass a JSON value (an object, array, string, number, boolean or null)`,
    );
  }
  validateEnvelope(parsed);
  return json;
}

/**
 * Why a handler string cannot be run, or undefined when it can. A handler names a module
 * inside the task root and an export of it: `path/to/file.export`. Absolute paths, `..`
 * parts, backslashes, NUL bytes and empty parts are refused: the module must never resolve
 * outside the task root.
 *
 * @example
 * ```ts
 * import { handlerProblem } from '@immortal-lambda/protocol';
 * handlerProblem('src/jobs/report.handler'); // undefined
 * handlerProblem('../../x/evil.handler'); // 'climbs out of the task root with ".."'
 * ```
 */
export function handlerProblem(handler: string): string | undefined {
  if (handler.length === 0) return 'is empty';
  if (handler.includes('\0')) return 'has a NUL byte';
  if (handler.startsWith('/') || /^[A-Za-z]:/.test(handler)) return 'is an absolute path';
  if (handler.includes('\\')) return 'has a backslash';
  const match = /^((?:.*\/)?[^/.]+)\.([^/]+)$/.exec(handler);
  if (!match?.[1] || !match[2]) return 'is not of the form path/to/file.export (for example index.handler)';
  const parts = match[1].split('/');
  if (parts.includes('..')) return 'climbs out of the task root with ".."';
  if (parts.some((part) => part === '' || part === '.')) return 'has an empty or "." path part';
  if (match[2].split('.').some((key) => key === '')) return 'has an empty export name';
  return undefined;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Validates a parsed envelope and returns it typed. Throws {@link EnvelopeError} listing every
 * field that is missing or of the wrong type, or naming an unknown protocol version.
 *
 * @example
 * ```ts
 * import { validateEnvelope } from '@immortal-lambda/protocol';
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
  const time = (where: Record<string, unknown>, path: string, key: string) => {
    const field = where[key];
    if (typeof field !== 'number' || !Number.isInteger(field) || Number.isNaN(new Date(field).getTime()))
      problems.push(`${path}.${key} must be a time in epoch milliseconds (got ${JSON.stringify(field)})`);
  };
  if (!isRecord(fn)) {
    problems.push('function must be an object');
  } else {
    text(fn, 'function', 'name');
    text(fn, 'function', 'version');
    if (fn.handler !== undefined) {
      const problem = typeof fn.handler === 'string' ? handlerProblem(fn.handler) : 'is not a string';
      if (problem !== undefined) problems.push(`function.handler ${JSON.stringify(fn.handler)} ${problem}`);
    }
    number(fn, 'function', 'memoryLimitInMB');
    if (fn.region !== undefined) text(fn, 'function', 'region');
  }
  if (value.held !== undefined && value.held !== 'sqs') {
    problems.push(`held must be "sqs" when present (got ${JSON.stringify(value.held)})`);
  }
  if (!isRecord(invocation)) {
    problems.push('invocation must be an object');
  } else {
    text(invocation, 'invocation', 'awsRequestId');
    text(invocation, 'invocation', 'invokedFunctionArn');
    if (invocation.logGroupName !== undefined) text(invocation, 'invocation', 'logGroupName', true);
    if (invocation.logStreamName !== undefined) text(invocation, 'invocation', 'logStreamName', true);
    time(invocation, 'invocation', 'startedAt');
    time(invocation, 'invocation', 'deadlineAt');
    time(invocation, 'invocation', 'handedOffAt');
    if (invocation.traceHeader !== undefined) text(invocation, 'invocation', 'traceHeader');
    if (invocation.identity !== undefined && !isRecord(invocation.identity)) {
      problems.push(
        `invocation.identity must be an object when present (got ${Array.isArray(invocation.identity) ? 'an array' : typeof invocation.identity})`,
      );
    }
  }
  if (!('event' in value)) problems.push('event is missing');
  if (value.journal !== undefined) {
    const journal = value.journal;
    if (!isRecord(journal) || !isRecord(journal.steps)) {
      problems.push('journal must be an object with a steps object when present');
    } else {
      for (const [name, step] of Object.entries(journal.steps)) {
        if (!isRecord(step)) problems.push(`journal.steps[${JSON.stringify(name)}] must be an object`);
      }
      if (journal.checkpoint !== undefined && !isRecord(journal.checkpoint))
        problems.push('journal.checkpoint must be an object when present');
    }
  }
  if (problems.length > 0) throw new EnvelopeError('the envelope is invalid', problems);
  return value as unknown as Envelope;
}

/**
 * Parses and validates envelope JSON. Throws {@link EnvelopeError} for text that is not JSON and
 * for any envelope {@link validateEnvelope} rejects.
 *
 * @example
 * ```ts
 * import { parseEnvelope } from '@immortal-lambda/protocol';
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
