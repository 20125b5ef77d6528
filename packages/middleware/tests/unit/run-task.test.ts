import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config.js';
import { buildOverrides, overridesSize } from '../../src/handoff/placement.js';
import { clientToken, RUN_TASK_OVERRIDES_LIMIT, startedBy } from '../../src/protocol/index.js';
import { isRetryableError } from '../../src/retry.js';
import { buildRunTaskInput, isRetryableFailure } from '../../src/run-task/input.js';
import { awsError, lambdaEnv } from '../helpers/lambda.js';

describe('RunTask parameters', () => {
  it('use the request id as the first client token and a suffixed one for later placements', () => {
    expect(clientToken('9f8e7d6c-5b4a-3210-fedc-ba9876543210', 0)).toBe(
      '9f8e7d6c-5b4a-3210-fedc-ba9876543210',
    );
    expect(clientToken('9f8e7d6c-5b4a-3210-fedc-ba9876543210', 2)).toBe(
      '9f8e7d6c-5b4a-3210-fedc-ba9876543210-p2',
    );
  });

  it('hash a request id that would make the token longer than 64 ASCII characters, or is not ASCII', () => {
    // Act
    const token = clientToken('x'.repeat(70), 0);

    // Assess
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    expect(clientToken('x'.repeat(70), 0)).toBe(token);
    expect(clientToken('x'.repeat(70), 1)).not.toBe(token);
    expect(clientToken(`${'x'.repeat(69)}y`, 0)).not.toBe(token);
    expect(clientToken('żółw-request', 0)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('mark the task with startedBy in the allowed alphabet and length', () => {
    expect(startedBy('abc-123')).toBe('immortal-lambda/abc-123');
    expect(startedBy('a.b:c'.repeat(40))).toMatch(/^[A-Za-z0-9_/-]{1,128}$/);
  });

  it('carry awsvpc networking without security groups when none are configured', () => {
    // Prepare
    const config = resolveConfig({}, lambdaEnv({ FARGATE_FALLBACK_SECURITY_GROUPS: undefined }));

    // Act
    const input = buildRunTaskInput(
      config,
      'FARGATE_SPOT',
      { requestId: 'r', functionName: 'f', functionVersion: '1', placement: 0 },
      buildOverrides('runner', '{}'),
    );

    // Assess
    expect(input.networkConfiguration?.awsvpcConfiguration).toEqual({
      subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
      assignPublicIp: 'DISABLED',
    });
    expect(input.capacityProviderStrategy).toEqual([{ capacityProvider: 'FARGATE_SPOT', weight: 1 }]);
    expect(input.launchType).toBeUndefined();
  });

  it('measure the overrides as ECS does, JSON included, counting UTF-8 bytes', () => {
    // Prepare
    const ascii = buildOverrides('runner', 'abc');
    const wide = buildOverrides('runner', 'żółw');

    // Assess
    expect(overridesSize(ascii)).toBe(JSON.stringify(ascii).length);
    expect(overridesSize(wide)).toBe(JSON.stringify(wide).length + 3); // ż, ó and ł take two bytes each;
    expect(RUN_TASK_OVERRIDES_LIMIT).toBe(8192);
  });
});

describe('retry classification', () => {
  it('retries throttling, server and network errors and nothing else', () => {
    expect(isRetryableError(awsError('ThrottlingException', 'Rate exceeded'))).toBe(true);
    expect(isRetryableError(awsError('ServerException', 'oops', 500))).toBe(true);
    expect(isRetryableError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryableError(awsError('Whatever', 'too many', 429))).toBe(true);
    expect(isRetryableError(awsError('AccessDeniedException', 'no'))).toBe(false);
    expect(isRetryableError(awsError('InvalidParameterException', 'bad subnet'))).toBe(false);
    expect(isRetryableError(awsError('ClusterNotFoundException', 'no cluster'))).toBe(false);
    expect(isRetryableError('text')).toBe(false);
  });

  it('retries capacity failures reported in failures[] and nothing else', () => {
    expect(isRetryableFailure('Capacity is unavailable at this time. Please try again later')).toBe(true);
    expect(isRetryableFailure('RESOURCE:MEMORY')).toBe(true);
    expect(isRetryableFailure('MISSING')).toBe(false);
    expect(isRetryableFailure(undefined)).toBe(false);
  });
});
