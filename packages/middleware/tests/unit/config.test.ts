import { describe, expect, it } from 'vitest';
import { DEFAULT_LOAD_AHEAD_MS, DEFAULT_MARGIN_MS, resolveConfig, resolveMode } from '../../src/config.js';
import { ConfigurationError } from '../../src/errors.js';
import { lambdaEnv } from '../helpers/lambda.js';

const problemsOf = (run: () => unknown): readonly string[] => {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigurationError');
};

describe('resolveConfig', () => {
  it('reads every setting from the environment and applies the defaults', () => {
    // Act
    const config = resolveConfig({}, lambdaEnv());

    // Assess
    expect(config).toEqual({
      cluster: 'jobs',
      taskDefinition: 'immortal-runner:3',
      containerName: 'runner',
      subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
      securityGroups: ['sg-0ccccccccccccccc3'],
      assignPublicIp: false,
      capacity: 'FARGATE',
      payloadBucket: undefined,
      payloadPrefix: 'immortal-lambda/envelopes/',
      outcomePrefix: 'immortal-lambda/outcomes/',
      marginMs: DEFAULT_MARGIN_MS,
      envelopeTransport: 'auto',
      maxInLambdaMs: undefined,
      prewarmMs: 0,
      loadAheadMs: DEFAULT_LOAD_AHEAD_MS,
      launchQueue: undefined,
      holdSqsBatches: true,
      ordered: false,
      metrics: { enabled: true, namespace: 'ImmortalLambda', dimensions: {} },
    });
  });

  it('reads holdSqsBatches from its variable, and refuses a value that is no boolean', () => {
    // Act
    const off = resolveConfig({}, { ...lambdaEnv(), FARGATE_FALLBACK_HOLD_SQS_BATCHES: 'false' });
    const wrong = () => resolveConfig({}, { ...lambdaEnv(), FARGATE_FALLBACK_HOLD_SQS_BATCHES: 'sometimes' });

    // Assess
    expect(off.holdSqsBatches).toBe(false);
    expect(wrong).toThrow(/FARGATE_FALLBACK_HOLD_SQS_BATCHES/);
  });

  it('needs the payload bucket for ordered, where the held stream batches are marked', () => {
    // Act
    const withoutBucket = () => resolveConfig({ ordered: true }, lambdaEnv());
    const withBucket = resolveConfig({ ordered: true, payloadBucket: 'held-batches' }, lambdaEnv());

    // Assess
    expect(withoutBucket).toThrow(/ordered is set but no payload bucket is set/);
    expect(withBucket.ordered).toBe(true);
  });

  it('lets explicit options win over the environment', () => {
    // Act
    const config = resolveConfig(
      {
        cluster: 'arn:aws:ecs:eu-west-1:123456789012:cluster/other',
        taskDefinition: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/runner:9',
        subnets: ['subnet-0ddddddddddddddd4'],
        assignPublicIp: true,
        capacity: 'FARGATE_SPOT,FARGATE',
        payloadBucket: 'my.payload-bucket',
        marginMs: 30_000,
        containerName: 'main',
      },
      lambdaEnv({ FARGATE_FALLBACK_ASSIGN_PUBLIC_IP: 'false', FARGATE_FALLBACK_MARGIN_MS: '5000' }),
    );

    // Assess
    expect(config).toMatchObject({
      cluster: 'arn:aws:ecs:eu-west-1:123456789012:cluster/other',
      taskDefinition: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/runner:9',
      subnets: ['subnet-0ddddddddddddddd4'],
      assignPublicIp: true,
      capacity: 'FARGATE_SPOT,FARGATE',
      payloadBucket: 'my.payload-bucket',
      marginMs: 30_000,
      containerName: 'main',
    });
  });

  it('parses lists with spaces, booleans in either case and the capacity with spaces', () => {
    // Act
    const config = resolveConfig(
      {},
      lambdaEnv({
        FARGATE_FALLBACK_SUBNETS: ' subnet-0aaaaaaaaaaaaaaa1 , ,subnet-0bbbbbbbbbbbbbbb2 ',
        FARGATE_FALLBACK_ASSIGN_PUBLIC_IP: 'TRUE',
        FARGATE_FALLBACK_CAPACITY: 'fargate_spot, fargate',
        FARGATE_FALLBACK_MARGIN_MS: '2500',
      }),
    );

    // Assess
    expect(config.subnets).toEqual(['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2']);
    expect(config.assignPublicIp).toBe(true);
    expect(config.capacity).toBe('FARGATE_SPOT,FARGATE');
    expect(config.marginMs).toBe(2500);
  });

  it('lists every missing setting in one error, naming its environment variable', () => {
    // Act
    const problems = problemsOf(() => resolveConfig({}, {}));

    // Assess
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/FARGATE_FALLBACK_CLUSTER/);
    expect(problems.join('\n')).toMatch(/FARGATE_FALLBACK_TASK_DEFINITION/);
    expect(problems.join('\n')).toMatch(/FARGATE_FALLBACK_SUBNETS/);
  });

  it('lists every invalid setting in one error', () => {
    // Act
    const problems = problemsOf(() =>
      resolveConfig(
        {},
        lambdaEnv({
          FARGATE_FALLBACK_CLUSTER: 'my cluster',
          FARGATE_FALLBACK_TASK_DEFINITION: 'runner:latest',
          FARGATE_FALLBACK_SECURITY_GROUPS: 'default',
          FARGATE_FALLBACK_ASSIGN_PUBLIC_IP: 'maybe',
          FARGATE_FALLBACK_CAPACITY: 'EC2',
          FARGATE_FALLBACK_BUCKET: 'Bad_Bucket',
          FARGATE_FALLBACK_MARGIN_MS: '250',
          FARGATE_FALLBACK_CONTAINER: 'my container',
        }),
      ),
    );

    // Assess
    const text = problems.join('\n');
    expect(problems).toHaveLength(8);
    for (const fragment of [
      'cluster "my cluster"',
      'taskDefinition "runner:latest"',
      '"default" is not a security group id',
      'assignPublicIp is "maybe": use true or false (FARGATE_FALLBACK_ASSIGN_PUBLIC_IP)',
      'capacity "EC2"',
      'payloadBucket "Bad_Bucket"',
      'marginMs "250"',
      'containerName "my container"',
    ]) {
      expect(text).toContain(fragment);
    }
  });

  it('refuses more subnets and security groups than RunTask accepts', () => {
    // Prepare
    const subnets = Array.from({ length: 17 }, (_, i) => `subnet-0${String(i).padStart(16, 'a')}`);
    const groups = Array.from({ length: 6 }, (_, i) => `sg-0${String(i).padStart(16, 'c')}`);

    // Act
    const problems = problemsOf(() => resolveConfig({ subnets, securityGroups: groups }, lambdaEnv()));

    // Assess
    expect(problems.join('\n')).toMatch(/17 subnets given; RunTask accepts at most 16/);
    expect(problems.join('\n')).toMatch(/6 securityGroups given; RunTask accepts at most 5/);
  });
});

describe('settings mean what they say', () => {
  it.each([
    ['"false"', 'false', 'active'],
    ['"no"', 'no', 'active'],
    ['"0"', '0', 'active'],
    ['"true"', 'true', 'disabled'],
    ['" YES "', ' YES ', 'disabled'],
  ])('reads disabled: %s as the environment variable would', (_what, value, mode) => {
    expect(resolveMode({ disabled: value as unknown as boolean }, {})).toBe(mode);
  });

  it('refuses a kill switch of another type, naming it', () => {
    expect(() => resolveMode({ disabled: 1 as unknown as boolean }, {})).toThrow(
      'disabled must be true or false, got a number',
    );
  });

  it('reads assignPublicIp: "false" as false and "true" as true', () => {
    expect(resolveConfig({ assignPublicIp: 'false' as unknown as boolean }, lambdaEnv()).assignPublicIp).toBe(
      false,
    );
    expect(resolveConfig({ assignPublicIp: 'true' as unknown as boolean }, lambdaEnv()).assignPublicIp).toBe(
      true,
    );
  });

  it('reads marginMs given as a string of digits, like the variable', () => {
    expect(resolveConfig({ marginMs: '2500' as unknown as number }, lambdaEnv()).marginMs).toBe(2500);
  });

  it.each([
    ['marginMs', { marginMs: [] }, 'marginMs an array must be a whole number'],
    ['marginMs', { marginMs: 'soon' }, 'marginMs "soon" must be a whole number'],
    ['marginMs', { marginMs: '0x10' }, 'marginMs "0x10" must be a whole number'],
    ['marginMs', { marginMs: Number.NaN }, 'marginMs "NaN" must be a whole number'],
    ['cluster', { cluster: 42 }, 'cluster must be a string, got a number'],
    [
      'subnets',
      { subnets: { a: 1 } },
      'subnets must be an array of strings or a comma-separated string, got an object',
    ],
    ['subnets', { subnets: [1] }, 'subnets must hold strings only, got a number'],
    [
      'cluster',
      { cluster: 'arn:aws:ecs:eu-west-1:123456789012:task-definition/runner:3' },
      'is a task definition ARN, not a cluster',
    ],
    [
      'taskDefinition',
      { taskDefinition: 'arn:aws:ecs:eu-west-1:123456789012:cluster/jobs' },
      'is a cluster ARN, not a task definition',
    ],
    ['payloadPrefix', { payloadPrefix: 'p'.repeat(2_000) }, 'payloadPrefix is 2000 characters long'],
    ['payloadPrefix', { payloadPrefix: 'a b/' }, 'payloadPrefix "a b/" may hold only'],
    ['payloadPrefix', { payloadPrefix: 7 }, 'payloadPrefix must be a string, got a number'],
  ])('refuses a bad %s with a ConfigurationError naming it', (_name, options, message) => {
    const problems = problemsOf(() => resolveConfig(options as never, lambdaEnv()));
    expect(problems.join('\n')).toContain(message);
  });

  it.each([
    ['192.168.5.4', 'shaped like an IP address'],
    ['sthree-envelopes', 'starts with "sthree-"'],
    ['amzn-s3-demo-bucket', 'starts with "amzn-s3-demo-"'],
    ['xn--envelopes', 'starts with "xn--"'],
    ['envelopes-s3alias', 'ends with "-s3alias"'],
    ['envelopes--ol-s3', 'ends with "--ol-s3"'],
    ['envelopes--x-s3', 'ends with "--x-s3"'],
    ['env..elopes', 'two dots in a row'],
    ['ab', '3 to 63 characters'],
  ])('refuses the bucket name %s, which S3 forbids', (bucket, why) => {
    const problems = problemsOf(() => resolveConfig({ payloadBucket: bucket }, lambdaEnv()));
    expect(problems.join('\n')).toContain(why);
  });
});

describe('envelopeTransport and maxInLambdaMs', () => {
  it('reads both from the environment', () => {
    const config = resolveConfig(
      {},
      lambdaEnv({
        FARGATE_FALLBACK_ENVELOPE_TRANSPORT: 'S3',
        FARGATE_FALLBACK_BUCKET: 'envelopes',
        FARGATE_FALLBACK_MAX_IN_LAMBDA_MS: '25000',
      }),
    );
    expect(config).toMatchObject({ envelopeTransport: 's3', maxInLambdaMs: 25_000 });
  });

  it('reads the payload prefix from FARGATE_FALLBACK_PAYLOAD_PREFIX, checked like the option', () => {
    expect(
      resolveConfig({}, lambdaEnv({ FARGATE_FALLBACK_PAYLOAD_PREFIX: 'jobs/handoffs/' })).payloadPrefix,
    ).toBe('jobs/handoffs/');
    expect(
      problemsOf(() => resolveConfig({}, lambdaEnv({ FARGATE_FALLBACK_PAYLOAD_PREFIX: 'a b/' }))).join('\n'),
    ).toContain('payloadPrefix "a b/" may hold only');
  });

  it('reads prewarmMs from FARGATE_FALLBACK_PREWARM_MS, and refuses it without a payload bucket', () => {
    expect(
      resolveConfig(
        {},
        lambdaEnv({ FARGATE_FALLBACK_PREWARM_MS: '30000', FARGATE_FALLBACK_BUCKET: 'jobs-payloads' }),
      ).prewarmMs,
    ).toBe(30_000);
    expect(problemsOf(() => resolveConfig({ prewarmMs: 30_000 }, lambdaEnv())).join('\n')).toContain(
      'prewarmMs is 30000 but no payload bucket is set',
    );
    expect(problemsOf(() => resolveConfig({ prewarmMs: -1 }, lambdaEnv())).join('\n')).toContain(
      'prewarmMs "-1" must be a whole number of milliseconds from 0 to 900000 (FARGATE_FALLBACK_PREWARM_MS)',
    );
  });

  it('reads loadAheadMs from FARGATE_FALLBACK_LOAD_AHEAD_MS, 0 turning it off, and refuses a negative one', () => {
    expect(resolveConfig({}, lambdaEnv({ FARGATE_FALLBACK_LOAD_AHEAD_MS: '5000' })).loadAheadMs).toBe(5_000);
    expect(resolveConfig({ loadAheadMs: 0 }, lambdaEnv()).loadAheadMs).toBe(0);
    expect(problemsOf(() => resolveConfig({ loadAheadMs: -1 }, lambdaEnv())).join('\n')).toContain(
      'loadAheadMs "-1" must be a whole number of milliseconds from 0 to 900000 (FARGATE_FALLBACK_LOAD_AHEAD_MS)',
    );
  });

  it('refuses the s3 transport without a bucket, and an unknown transport', () => {
    expect(problemsOf(() => resolveConfig({ envelopeTransport: 's3' }, lambdaEnv())).join('\n')).toContain(
      'envelopeTransport is s3 but no payload bucket is set',
    );
    expect(
      problemsOf(() => resolveConfig({ envelopeTransport: 'carrier-pigeon' as never }, lambdaEnv())).join(
        '\n',
      ),
    ).toContain('envelopeTransport "carrier-pigeon" is not one of auto | s3');
  });
});

describe('resolveMode', () => {
  it('is runner inside the runner, whatever else is set', () => {
    expect(resolveMode({ disabled: false }, { FARGATE_FALLBACK_RUNNER: '1' })).toBe('runner');
  });

  it('honours the kill switch from the environment and from the option', () => {
    expect(resolveMode({}, { FARGATE_FALLBACK_DISABLED: 'true' })).toBe('disabled');
    expect(resolveMode({ disabled: true }, {})).toBe('disabled');
    expect(resolveMode({ disabled: false }, { FARGATE_FALLBACK_DISABLED: 'true' })).toBe('active');
    expect(resolveMode({}, {})).toBe('active');
  });

  it('refuses a kill switch that is neither true nor false', () => {
    expect(() => resolveMode({}, { FARGATE_FALLBACK_DISABLED: 'off please' })).toThrow(/use true or false/);
  });
});
