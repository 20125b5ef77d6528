import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalControlPlane, NoLauncher, type SubnetSpec, startS3 } from '@immortal-lambda/local';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Deployment, deployExample, registerTaskDefinitions } from '../lib/deployment.js';

const examples = join(import.meta.dirname, '..');
const doctorCli = join(examples, '..', 'cdk', 'dist', 'cli.js');
let deployment: Deployment;

beforeAll(() => {
  deployment = deployExample({ functions: [{ name: 'report-job' }] });
});

/**
 * Runs `immortal-lambda doctor --function report-job` against a local plane that serves the
 * deployment as given (its roles' policies decide IAM's simulation), broken as asked.
 */
async function doctor(
  broken: {
    architecture?: 'x86_64' | 'arm64';
    subnets?: (id: string) => SubnetSpec;
    endpoints?: string[];
    withoutStatement?: string;
    onFailure?: false;
    /** The payload bucket without its expiration rules (a bucket made elsewhere). */
    noLifecycle?: true;
    ruleState?: 'DISABLED';
    /** The watchdog serving other functions only. */
    watchdogServes?: string;
  } = {},
): Promise<{ code: number; lines: string[] }> {
  const deployed = deployment.functions['report-job'];
  if (!deployed) throw new Error('report-job is not deployed');
  const policies = deployed.function.policies;
  if (broken.withoutStatement) {
    deployed.function.policies = policies.map((document) => ({
      ...document,
      Statement: document.Statement.filter(
        (statement) => (statement as { Sid?: string }).Sid !== broken.withoutStatement,
      ),
    }));
  }
  const plane = new LocalControlPlane({ launcher: new NoLauncher(), simulate: deployment.evaluate });
  registerTaskDefinitions(plane, deployment);
  plane.registerNetwork({
    cluster: deployment.cluster,
    subnets: deployment.subnets.map((id) => broken.subnets?.(id) ?? id),
    ...(broken.endpoints ? { endpoints: broken.endpoints } : {}),
  });
  const {
    AWS_ACCESS_KEY_ID: _key,
    AWS_SECRET_ACCESS_KEY: _secret,
    ...settings
  } = deployed.function.environment;
  const known = JSON.parse(String(deployed.task.environment.FARGATE_FALLBACK_DESTINATIONS)).$LATEST;
  plane.registerFunction({
    name: 'report-job',
    folder: join(examples, 'dist', 'report'),
    handler: 'index.handler',
    environment: settings,
    role: deployed.function.roleArn,
    timeout: 900,
    architecture: broken.architecture ?? 'x86_64',
    ...(broken.onFailure === false ? {} : { destinations: known }),
  });
  // The safety net as deployed: its rule, and its watchdog (whose settings say what it serves).
  for (const rule of deployment.rules) {
    plane.registerRule({ ...rule, ...(broken.ruleState ? { state: broken.ruleState } : {}) });
  }
  const {
    AWS_ACCESS_KEY_ID: _k,
    AWS_SECRET_ACCESS_KEY: _s,
    ...watchdogSettings
  } = deployed.watchdog.environment;
  plane.registerFunction({
    name: String(deployed.watchdog.arn?.split(':').at(-1)),
    folder: join(examples, 'dist', 'report'),
    handler: 'index.handler',
    environment: {
      ...watchdogSettings,
      ...(broken.watchdogServes ? { FARGATE_FALLBACK_FUNCTION_ARN: broken.watchdogServes } : {}),
    },
  });
  const s3 = await startS3({
    bucket: deployment.bucket,
    ...(broken.noLifecycle ? {} : { lifecycle: deployment.lifecycle }),
  });
  const url = await plane.start();
  try {
    const run = await promisify(execFile)(
      process.execPath,
      [doctorCli, 'doctor', '--function', 'report-job'],
      {
        env: {
          PATH: process.env.PATH,
          AWS_REGION: plane.region,
          AWS_ACCESS_KEY_ID: deployment.operatorKey,
          AWS_SECRET_ACCESS_KEY: 'local',
          AWS_ENDPOINT_URL_LAMBDA: url,
          AWS_ENDPOINT_URL_ECS: url,
          AWS_ENDPOINT_URL_IAM: url,
          AWS_ENDPOINT_URL_EC2: url,
          AWS_ENDPOINT_URL_EVENTBRIDGE: url,
          AWS_ENDPOINT_URL_S3: s3.endpoint,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
      },
    ).then(
      (done) => ({ code: 0, stdout: done.stdout }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );
    return { code: run.code, lines: run.stdout.split('\n') };
  } finally {
    deployed.function.policies = policies;
    await plane.stop();
    await s3.stop();
  }
}

const failures = (lines: string[]) => lines.filter((line) => line.startsWith('FAIL'));

describe('immortal-lambda doctor, against a deployment on the local plane', () => {
  it('passes every check of the deployment as the construct makes it', async () => {
    // Act
    const { code, lines } = await doctor();

    // Assess
    expect(failures(lines)).toEqual([]);
    for (const name of [
      'runtime',
      'timeout',
      'fallback settings',
      'cluster',
      'task definition',
      'function role',
      'task role',
      'network',
      'safety net',
      'watchdog',
      'bucket rules',
    ])
      expect(
        lines.some((line) => line.startsWith(`ok    ${name}:`)),
        name,
      ).toBe(true);
    expect(code).toBe(0);
  });

  it('names the grant a role lacks, and exits 1', async () => {
    // Act: the function's policy without the statement that lets it pass the task roles.
    const { code, lines } = await doctor({ withoutStatement: 'PassTheTaskRoles' });

    // Assess
    expect(code).toBe(1);
    expect(failures(lines)).toEqual([
      expect.stringMatching(/^FAIL {2}function role: .* may not: iam:PassRole on arn:aws:iam::/),
    ]);
    expect(lines.join('\n')).toMatch(/fix: grant these/);
  });

  it('finds private subnets with no way to ECR, S3, CloudWatch Logs and Lambda', async () => {
    // Act: no route out; an S3 endpoint only.
    const { code, lines } = await doctor({
      subnets: (id) => ({ id, internet: 'none' }),
      endpoints: ['com.amazonaws.eu-west-1.s3'],
    });

    // Assess
    expect(code).toBe(1);
    expect(failures(lines)).toEqual([
      expect.stringMatching(
        /^FAIL {2}network: subnet-\w+ has no route to the internet, and its VPC has no endpoint for ecr\.api, ecr\.dkr, logs, lambda/,
      ),
    ]);
  });

  it('accepts private subnets with a NAT gateway', async () => {
    const { code } = await doctor({ subnets: (id) => ({ id, internet: 'nat' }) });
    expect(code).toBe(0);
  });

  it('finds a task definition of another architecture than the function', async () => {
    // Act: an arm64 function, its runner task on X86_64.
    const { code, lines } = await doctor({ architecture: 'arm64' });

    // Assess
    expect(code).toBe(1);
    expect(failures(lines)).toEqual([
      expect.stringMatching(/^FAIL {2}task definition: .*it runs on X86_64, the function on arm64/),
    ]);
  });

  it('finds a function with no on-failure destination', async () => {
    const { code, lines } = await doctor({ onFailure: false });
    expect(code).toBe(1);
    expect(failures(lines)).toEqual([
      expect.stringMatching(/^FAIL {2}safety net: report-job has no on-failure destination/),
    ]);
  });

  it('finds a payload bucket whose envelopes and records never expire', async () => {
    // Act: the bucket made elsewhere, without the construct's expiration rules.
    const { code, lines } = await doctor({ noLifecycle: true });

    // Assess
    expect(code).toBe(1);
    expect(failures(lines)).toEqual([
      expect.stringMatching(
        /^FAIL {2}bucket rules: envelopes .* under .*\/immortal-lambda\/envelopes\/ and outcome records under .*\/immortal-lambda\/outcomes\/ never expire/,
      ),
    ]);
  });

  it('finds a safety-net rule that is disabled, and a watchdog that does not serve the function', async () => {
    // Act
    const disabled = await doctor({ ruleState: 'DISABLED' });
    const elsewhere = await doctor({
      watchdogServes: 'arn:aws:lambda:eu-west-1:123456789012:function:payroll',
    });

    // Assess
    expect(disabled.code).toBe(1);
    expect(failures(disabled.lines)).toEqual([
      expect.stringMatching(
        /^FAIL {2}watchdog: the rule \w+ is DISABLED: stopped runner tasks reach no watchdog/,
      ),
    ]);
    expect(disabled.lines.join('\n')).toMatch(/fix: enable it: aws events enable-rule --name/);
    expect(elsewhere.code).toBe(1);
    expect(failures(elsewhere.lines)).toEqual([
      expect.stringMatching(
        /^FAIL {2}watchdog: .* whose FARGATE_FALLBACK_FUNCTION_ARN does not name report-job/,
      ),
    ]);
  });
});
