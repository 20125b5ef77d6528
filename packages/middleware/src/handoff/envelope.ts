import { createEnvelope, type Envelope, encodeEnvelope, type Journal } from '@immortal-lambda/protocol';
import type { Context } from 'aws-lambda';
import { EnvelopeError, HandoffError } from '../errors.js';
import type { HandoffTarget } from '../target.js';

/**
 * The envelope of the invocation as of `handedOffAt`, with its journal, and its JSON. An
 * invocation that cannot be carried (a context field the envelope refuses, an event that is not
 * JSON) is a {@link HandoffError}.
 */
export function buildEnvelope(
  target: HandoffTarget,
  journal: Journal | undefined,
  handedOffAt: number,
  env: Readonly<Record<string, string | undefined>>,
  held?: 'sqs' | 'stream',
): { envelope: Envelope; json: string } {
  const { context } = target;
  const envelope = createEnvelope({
    event: target.event,
    context,
    env: target.env ?? env,
    journal,
    startedAt: target.startedAt,
    deadlineAt: target.deadlineAt,
    handedOffAt,
  });
  // The runner deletes what it finished of an SQS batch the wrapper answered as failed; a held
  // stream batch asks nothing of it.
  if (held === 'sqs') envelope.held = held;
  try {
    return { envelope, json: encodeEnvelope(envelope) };
  } catch (error) {
    const invalidField = error instanceof EnvelopeError && error.problems.length > 0;
    throw new HandoffError(
      invalidField ? 'invalid-context' : 'unserializable-event',
      error instanceof EnvelopeError
        ? `${invalidField ? 'the invocation cannot be handed off: ' : ''}${error.message}`
        : `the envelope cannot be built: ${String(error)}`,
      { requestId: context.awsRequestId, cause: error },
    );
  }
}

/**
 * Checks, before anything else of the handoff, that the context identifies the invocation: the
 * request id and the function name make the client token, the task's tags and the envelope's key.
 */
export function requireInvocationContext(context: Context, requestId: string | undefined): void {
  const problems: string[] = [];
  for (const key of ['awsRequestId', 'functionName', 'invokedFunctionArn'] as const) {
    const value: unknown = (context as unknown as Record<string, unknown>)[key];
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(
        `context.${key} is ${value === undefined ? 'missing' : typeof value === 'string' ? 'empty' : `a ${typeof value}`}`,
      );
    }
  }
  if (problems.length === 0) return;
  throw new HandoffError(
    'invalid-context',
    `the invocation cannot be handed off: ${problems.join(', ')}; Lambda always sets these, so pass a Lambda-shaped context (test harnesses included)`,
    { requestId },
  );
}

/** A failure of the handoff as the {@link HandoffError} it is, or wrapped in one. */
export function asHandoffError(caught: unknown, requestId: string | undefined): HandoffError {
  if (caught instanceof HandoffError) return caught;
  return new HandoffError(
    'deadline',
    `the handoff failed: ${caught instanceof Error ? caught.message : String(caught)}`,
    { requestId, cause: caught },
  );
}
