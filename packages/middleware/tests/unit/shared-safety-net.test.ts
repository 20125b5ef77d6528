import { handedOffEnvelope } from '@immortal-lambda/local';
import { describe, expect, it } from 'vitest';
import { RelaunchError, relaunchFailures, taskWatchdog } from '../../src/safety-net/index.js';

// One watchdog and one relaunch function serve two functions of one cluster: each function's
// placement is read from its own deployed configuration.
const ARN = (name: string) => `arn:aws:lambda:eu-west-1:123456789012:function:${name}`;
const sharedEnv = {
  AWS_REGION: 'eu-west-1',
  FARGATE_FALLBACK_CLUSTER: 'jobs',
  FARGATE_FALLBACK_FUNCTION_ARN: `${ARN('report')},${ARN('payroll')}`,
};
const variables: Record<string, Record<string, string>> = {
  report: {
    FARGATE_FALLBACK_CLUSTER: 'jobs',
    FARGATE_FALLBACK_TASK_DEFINITION: 'report-runner',
    FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
    FARGATE_FALLBACK_MAX_ATTEMPTS: '2',
  },
  payroll: {
    FARGATE_FALLBACK_CLUSTER: 'jobs',
    FARGATE_FALLBACK_TASK_DEFINITION: 'payroll-runner',
    FARGATE_FALLBACK_SUBNETS: 'subnet-0bbbbbbbbbbbbbbb2',
    FARGATE_FALLBACK_SECURITY_GROUPS: 'sg-0ccccccccccccccc3',
  },
};

/** Lambda answering GetFunctionConfiguration from `variables`, and ECS starting every task asked for. */
function fakeAws() {
  const reads: { name: string; qualifier: string | undefined }[] = [];
  const started: Record<string, unknown>[] = [];
  const lambda = {
    send: async (command: { constructor: { name: string }; input: Record<string, string> }) => {
      const name = String(command.input.FunctionName);
      reads.push({ name, qualifier: command.input.Qualifier });
      const found = variables[name];
      if (!found)
        throw Object.assign(new Error(`Function not found: ${name}`), { name: 'ResourceNotFoundException' });
      return { Environment: { Variables: found } };
    },
  };
  const ecsClient = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      if (command.constructor.name === 'RunTaskCommand') {
        started.push(command.input);
        return {
          tasks: [{ taskArn: `arn:aws:ecs:eu-west-1:123456789012:task/jobs/${started.length}` }],
          failures: [],
        };
      }
      return { taskArns: [], tasks: [] };
    },
  };
  return {
    reads,
    started,
    lambda,
    ecsClient: ecsClient as never,
    destinations: { lambda: () => lambda } as never,
  };
}

const spotStop = (functionName: string, requestId: string, family: string, attempt?: number) => ({
  source: 'aws.ecs',
  'detail-type': 'ECS Task State Change',
  detail: {
    lastStatus: 'STOPPED',
    clusterArn: 'arn:aws:ecs:eu-west-1:123456789012:cluster/jobs',
    taskDefinitionArn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${family}:4`,
    taskArn: 'arn:aws:ecs:eu-west-1:123456789012:task/jobs/0',
    capacityProviderName: 'FARGATE_SPOT',
    stopCode: 'SpotInterruption',
    containers: [{ name: 'runner', exitCode: 143 }],
    overrides: {
      containerOverrides: [
        {
          name: 'runner',
          environment: [
            {
              name: 'FARGATE_FALLBACK_ENVELOPE',
              value: JSON.stringify(handedOffEnvelope({ functionName, requestId })),
            },
            ...(attempt ? [{ name: 'FARGATE_FALLBACK_ATTEMPT', value: String(attempt) }] : []),
          ],
        },
      ],
    },
  },
});

const quiet = { info() {}, warn() {}, error() {} };

describe('a watchdog serving several functions of one cluster', () => {
  it("relaunches each function's task with that function's own placement, read once from its configuration", async () => {
    // Prepare
    const aws = fakeAws();
    const watchdog = taskWatchdog({ env: sharedEnv, backoffMs: 0, logger: quiet, ...aws });

    // Act
    const payroll = await watchdog(spotStop('payroll', 'p-1', 'payroll-runner'));
    const report = await watchdog(spotStop('report', 'r-1', 'report-runner'));
    const reportAgain = await watchdog(spotStop('report', 'r-2', 'report-runner'));

    // Assess
    expect([payroll.action, report.action, reportAgain.action]).toEqual([
      'relaunched',
      'relaunched',
      'relaunched',
    ]);
    expect(aws.started.map((input) => input.taskDefinition)).toEqual([
      'payroll-runner',
      'report-runner',
      'report-runner',
    ]);
    expect(aws.started[0]).toMatchObject({
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ['subnet-0bbbbbbbbbbbbbbb2'],
          securityGroups: ['sg-0ccccccccccccccc3'],
        },
      },
    });
    // Cached: report's configuration was read once for its two tasks.
    expect(aws.reads.filter((read) => read.name === 'report')).toHaveLength(1);
  });

  it("takes each function's attempt limit from its own settings", async () => {
    // Prepare: report allows 2 attempts, payroll the default 3
    const aws = fakeAws();
    const watchdog = taskWatchdog({ env: sharedEnv, backoffMs: 0, logger: quiet, ...aws });

    // Act
    const report = await watchdog(spotStop('report', 'r-3', 'report-runner', 2));
    const payroll = await watchdog(spotStop('payroll', 'p-3', 'payroll-runner', 2));

    // Assess
    expect(report.action).toBe('gave-up');
    expect(payroll.action).toBe('relaunched');
  });

  it('leaves alone a task of one served function whose envelope names another', async () => {
    // Prepare: a report-runner task carrying payroll's envelope
    const aws = fakeAws();
    const watchdog = taskWatchdog({ env: sharedEnv, backoffMs: 0, logger: quiet, ...aws });

    // Act
    const outcome = await watchdog(spotStop('payroll', 'p-4', 'report-runner'));

    // Assess
    expect(outcome.action).toBe('ignored');
    expect(outcome.reason).toMatch(/family report-runner, not payroll-runner, the runner of payroll/);
    expect(aws.started).toEqual([]);
  });

  it('leaves alone a function it does not serve without reading its configuration', async () => {
    // Prepare
    const aws = fakeAws();
    const watchdog = taskWatchdog({ env: sharedEnv, backoffMs: 0, logger: quiet, ...aws });

    // Act
    const outcome = await watchdog(spotStop('billing', 'b-1', 'billing-runner'));

    // Assess
    expect(outcome).toMatchObject({ action: 'ignored' });
    expect(outcome.reason).toMatch(/ran billing, not report or payroll, the functions this watchdog serves/);
    expect(aws.reads).toEqual([]);
  });

  it('says what to set when it has neither a placement nor functions to serve', () => {
    expect(() => taskWatchdog({ env: { AWS_REGION: 'eu-west-1' } })).toThrow(
      /has no placement and serves no function: set FARGATE_FALLBACK_FUNCTION_ARN/,
    );
    expect(() =>
      taskWatchdog({ env: { AWS_REGION: 'eu-west-1', FARGATE_FALLBACK_FUNCTION_ARN: ARN('report') } }),
    ).toThrow(/needs the cluster it watches: set FARGATE_FALLBACK_CLUSTER/);
  });
});

const failureRecord = (functionName: string, requestId: string) => ({
  version: '1.0',
  timestamp: '2026-12-02T10:00:00.000Z',
  requestContext: {
    requestId,
    functionArn: `${ARN(functionName)}:$LATEST`,
    condition: 'RetriesExhausted',
    approximateInvokeCount: 3,
  },
  requestPayload: { job: requestId },
  responseContext: { statusCode: 200, executedVersion: '7', functionError: 'Unhandled' },
  responsePayload: { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 900.00 seconds' },
});

describe('a relaunch function serving several functions', () => {
  const remaining = { getRemainingTimeInMillis: () => 60_000 };

  it("starts each function's failure with that function's placement, for the version that ran", async () => {
    // Prepare
    const aws = fakeAws();
    const relaunch = relaunchFailures({ env: sharedEnv, logger: quiet, ...aws });

    // Act
    const result = await relaunch(failureRecord('payroll', 'p-10'), remaining);

    // Assess
    expect(result.relaunched).toEqual([
      expect.objectContaining({ requestId: 'p-10', taskArn: expect.any(String) }),
    ]);
    expect(aws.started[0]?.taskDefinition).toBe('payroll-runner');
    expect(aws.reads).toEqual([{ name: 'payroll', qualifier: '7' }]);
  });

  it('refuses, and starts nothing for, a record of a function it does not serve', async () => {
    // Prepare
    const aws = fakeAws();
    const relaunch = relaunchFailures({ env: sharedEnv, logger: quiet, ...aws });

    // Act
    const relaunching = relaunch(failureRecord('billing', 'b-10'), remaining);

    // Assess
    await expect(relaunching).rejects.toBeInstanceOf(RelaunchError);
    await expect(relaunch(failureRecord('billing', 'b-10'), remaining)).rejects.toThrow(
      /serves .*function:report, .*function:payroll only/,
    );
    expect(aws.started).toEqual([]);
  });

  it('says loudly when a served function was not deployed with the fallback settings', async () => {
    // Prepare: payroll's configuration carries no task definition
    const aws = fakeAws();
    const saved = variables.payroll;
    variables.payroll = { FARGATE_FALLBACK_CLUSTER: 'jobs' };
    const relaunch = relaunchFailures({ env: sharedEnv, logger: quiet, ...aws });

    try {
      // Act
      const relaunching = relaunch(failureRecord('payroll', 'p-11'), remaining);

      // Assess
      await expect(relaunching).rejects.toThrow(/payroll:7 was not deployed with the fallback's settings/);
      expect(aws.started).toEqual([]);
    } finally {
      variables.payroll = saved as Record<string, string>;
    }
  });
});
