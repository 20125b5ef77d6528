#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { formatCheck } from './check.js';
import { runDoctor } from './doctor.js';

const USAGE = `immortal-lambda doctor --function <name> [--region <region>]

Checks a deployed function's Fargate fallback against AWS, read-only: its settings, the cluster,
the runner's task definition, the roles' permissions (IAM's SimulatePrincipalPolicy), the
network, the safety net (destination, watchdog rule) and the payload bucket's expiration rules. One line per check; exits 1 when any fails.`;

async function main(argv: string[]): Promise<number> {
  let values: { function?: string | undefined; region?: string | undefined; help?: boolean | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { function: { type: 'string' }, region: { type: 'string' }, help: { type: 'boolean' } },
    }));
  } catch (error) {
    console.error(`immortal-lambda: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals[0] !== 'doctor' || !values.function) {
    console.error(
      `immortal-lambda: ${positionals[0] === 'doctor' ? 'name the function: --function <name>' : `unknown command ${positionals[0] ?? '(none)'}`}\n\n${USAGE}`,
    );
    return 2;
  }
  const region = values.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  const settings = region ? { region } : {};
  const [{ LambdaClient }, { ECSClient }, { IAMClient }, { EC2Client }, { EventBridgeClient }, { S3Client }] =
    await Promise.all([
      import('@aws-sdk/client-lambda'),
      import('@aws-sdk/client-ecs'),
      import('@aws-sdk/client-iam'),
      import('@aws-sdk/client-ec2'),
      import('@aws-sdk/client-eventbridge'),
      import('@aws-sdk/client-s3'),
    ]);
  const checks = await runDoctor(values.function, {
    lambda: new LambdaClient(settings),
    ecs: new ECSClient(settings),
    iam: new IAMClient(settings),
    ec2: new EC2Client(settings),
    events: new EventBridgeClient(settings),
    s3: new S3Client(settings),
  });
  for (const check of checks) console.log(formatCheck(check));
  const failed = checks.filter((check) => !check.ok).length;
  console.log(
    failed === 0 ? `\n${checks.length} checks passed` : `\n${failed} of ${checks.length} checks failed`,
  );
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
