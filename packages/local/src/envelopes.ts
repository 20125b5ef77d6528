import { createEnvelope, type Envelope } from '@immortal-lambda/protocol';

/**
 * What {@link handedOffEnvelope} needs; everything but the function name has a default.
 *
 * @example
 * ```ts
 * import type { HandedOffInvocation } from '@immortal-lambda/local';
 * const invocation: HandedOffInvocation = { functionName: 'report', version: '3', event: { reportId: 'Q3' } };
 * ```
 */
export interface HandedOffInvocation {
  functionName: string;
  version?: string;
  handler?: string;
  requestId?: string;
  event?: unknown;
  region?: string;
  traceHeader?: string;
}

/**
 * The envelope the middleware would have built for an invocation of a registered function:
 * what `FARGATE_FALLBACK_ENVELOPE` carries. Lets you run the runner directly, without Lambda.
 *
 * @example
 * ```ts
 * import { handedOffEnvelope } from '@immortal-lambda/local';
 * const envelope = handedOffEnvelope({ functionName: 'report', event: { reportId: 'Q3' } });
 * process.env.FARGATE_FALLBACK_ENVELOPE = JSON.stringify(envelope);
 * ```
 */
export function handedOffEnvelope(invocation: HandedOffInvocation): Envelope {
  const now = Date.now();
  const region = invocation.region ?? 'eu-west-1';
  return createEnvelope({
    event: invocation.event ?? {},
    context: {
      awsRequestId:
        invocation.requestId ?? `local-${now.toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      functionName: invocation.functionName,
      invokedFunctionArn: `arn:aws:lambda:${region}:123456789012:function:${invocation.functionName}`,
      memoryLimitInMB: '1024',
      logGroupName: `/aws/lambda/${invocation.functionName}`,
      logStreamName: 'local',
    },
    env: {
      AWS_LAMBDA_FUNCTION_VERSION: invocation.version ?? '1',
      _HANDLER: invocation.handler ?? 'index.handler',
      AWS_REGION: region,
      ...(invocation.traceHeader ? { _X_AMZN_TRACE_ID: invocation.traceHeader } : {}),
    },
    startedAt: now,
    deadlineAt: now,
    handedOffAt: now,
  });
}
