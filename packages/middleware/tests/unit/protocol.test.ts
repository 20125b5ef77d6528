import { describe, expect, it } from 'vitest';
import {
  createEnvelope,
  ENVELOPE_VERSION,
  EnvelopeError,
  envelopeKey,
  formatS3Uri,
  isS3Uri,
  parseEnvelope,
  parseS3Uri,
  serializeEnvelope,
  validateEnvelope,
} from '../../src/protocol/index.js';
import { lambdaContext, lambdaEnv } from '../helpers/lambda.js';

const build = (event: unknown, env = lambdaEnv()) => {
  const context = lambdaContext(60_000, {
    awsRequestId: 'req-1',
    identity: undefined,
    clientContext: undefined,
  });
  return createEnvelope({ event, context, env, startedAt: 1_000, deadlineAt: 61_000, handedOffAt: 51_000 });
};

describe('createEnvelope', () => {
  it('carries the exact version, handler, trace header, request and event', () => {
    // Act
    const envelope = build({ id: 7 });

    // Assess
    expect(envelope).toEqual({
      kind: 'immortal-lambda.envelope',
      version: ENVELOPE_VERSION,
      function: {
        name: 'report-job',
        version: '7',
        handler: 'src/jobs/report.handler',
        memoryLimitInMB: 1024,
        region: 'eu-west-1',
      },
      invocation: {
        awsRequestId: 'req-1',
        invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job:live',
        logGroupName: '/aws/lambda/report-job',
        logStreamName: '2026/11/26/[7]abcdef',
        traceHeader: 'Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1',
        startedAt: 1_000,
        deadlineAt: 61_000,
        handedOffAt: 51_000,
      },
      event: { id: 7 },
    });
  });

  it('takes the version from the context when the environment has none', () => {
    // Act
    const envelope = build({}, lambdaEnv({ AWS_LAMBDA_FUNCTION_VERSION: undefined }));

    // Assess
    expect(envelope.function.version).toBe('7');
  });

  it('keeps identity and client context when Lambda gives them', () => {
    // Prepare
    const context = lambdaContext(1_000, {
      identity: { cognitoIdentityId: 'id', cognitoIdentityPoolId: 'pool' },
      clientContext: { client: { installationId: 'i' } } as never,
    });

    // Act
    const envelope = createEnvelope({
      event: null,
      context,
      env: {},
      startedAt: 0,
      deadlineAt: 0,
      handedOffAt: 0,
    });

    // Assess
    expect(envelope.invocation.identity).toEqual({ cognitoIdentityId: 'id', cognitoIdentityPoolId: 'pool' });
    expect(envelope.invocation.clientContext).toEqual({ client: { installationId: 'i' } });
  });
});

describe('serializeEnvelope and parseEnvelope', () => {
  it('round-trip an envelope', () => {
    // Prepare
    const envelope = build({ nested: { list: [1, 'two', null, true] }, unicode: 'żółw 🐢' });

    // Act
    const parsed = parseEnvelope(serializeEnvelope(envelope));

    // Assess
    expect(parsed).toEqual(envelope);
  });

  it('explain an event with a circular reference', () => {
    // Prepare
    const event: Record<string, unknown> = {};
    event.self = event;

    // Act
    const serializing = () => serializeEnvelope(build(event));

    // Assess
    expect(serializing).toThrow(EnvelopeError);
    expect(serializing).toThrow(/circular/i);
  });

  it('refuse text that is not JSON, quoting its start', () => {
    expect(() => parseEnvelope('s3:/bucket/key')).toThrow(/not valid JSON.*"s3:\/bucket\/key"/);
  });

  it('refuse a document of another kind', () => {
    expect(() => parseEnvelope('{"hello":"world"}')).toThrow(/not an immortal-lambda envelope/);
  });

  it('refuse an unknown version and say which one this reads', () => {
    // Prepare
    const text = JSON.stringify({ ...build({}), version: 99 });

    // Act
    const parsing = () => parseEnvelope(text);

    // Assess
    expect(parsing).toThrow(/unknown envelope version 99: this runner reads version 1/);
  });

  it('list every missing or mistyped field', () => {
    // Prepare
    const envelope = build({}) as unknown as Record<string, Record<string, unknown>>;
    const broken = {
      ...envelope,
      function: { ...envelope.function, name: '', memoryLimitInMB: '1024' },
      invocation: { ...envelope.invocation, awsRequestId: 42, deadlineAt: undefined },
    };
    delete (broken as Record<string, unknown>).event;

    // Act
    let problems: readonly string[] = [];
    try {
      validateEnvelope(broken);
    } catch (error) {
      problems = (error as EnvelopeError).problems;
    }

    // Assess
    expect(problems).toEqual([
      'function.name must be a non-empty string',
      'function.memoryLimitInMB must be a number',
      'invocation.awsRequestId must be a non-empty string',
      'invocation.deadlineAt must be a time in epoch milliseconds (got undefined)',
      'event is missing',
    ]);
  });
});

describe('S3 locations', () => {
  it('split and format s3:// URIs', () => {
    expect(isS3Uri('s3://b/k')).toBe(true);
    expect(isS3Uri('{"kind":1}')).toBe(false);
    expect(parseS3Uri('s3://bucket/a/b/c.json')).toEqual({ bucket: 'bucket', key: 'a/b/c.json' });
    expect(formatS3Uri({ bucket: 'bucket', key: 'a/b.json' })).toBe('s3://bucket/a/b.json');
    expect(() => parseS3Uri('s3://bucket-only')).toThrow(/not an s3:\/\/bucket\/key URI/);
  });

  it('derive the envelope key from the function and request id, made safe', () => {
    expect(envelopeKey('p/', 'report-job', 'c0ffee-1')).toBe('p/report-job/c0ffee-1.json');
    expect(envelopeKey('p/', 'fn', '../../etc/passwd')).toBe('p/fn/.._.._etc_passwd.json');
  });
});
