import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import { type Check, describe, fail, pass } from './check.js';
import { checkFunction, type FunctionConfiguration } from './deployment.js';
import { checkCluster, checkTaskDefinition } from './ecs.js';
import { checkNetwork } from './network.js';
import { checkRole, runnerCalls, wrapperCalls } from './permissions.js';
import { ec2Reads, ecsReads, safetyNetReads, simulateWith } from './reads.js';
import { checkBucketRules, checkWatchdog } from './safety-net.js';

/** The clients `immortal-lambda doctor` reads a deployment with (read-only calls only). */
export interface DoctorClients {
  lambda: LambdaClient;
  ecs: ECSClient;
  iam: IAMClient;
  ec2: EC2Client;
  events: EventBridgeClient;
  s3: S3Client;
}

/**
 * Checks a deployed function against AWS, read-only: its settings, the cluster, the runner's task
 * definition, the permissions of the function's role and the task role for every call the wrapper
 * and the runner make (IAM's SimulatePrincipalPolicy), the network, the safety net (its on-failure
 * destination, the rule that sends stopped runner tasks to a watchdog that serves the function) and
 * the payload bucket's expiration rules. One {@link Check} per line; any that does not hold says what to change.
 *
 * @example
 * ```ts
 * import { runDoctor } from '@immortal-lambda/cdk/doctor';
 * const checks = await runDoctor('report-job', { lambda, ecs, iam, ec2, events, s3 });
 * process.exitCode = checks.every((check) => check.ok) ? 0 : 1;
 * ```
 */
export async function runDoctor(functionName: string, clients: DoctorClients): Promise<Check[]> {
  const { GetFunctionCommand } = await import('@aws-sdk/client-lambda');
  let config: FunctionConfiguration;
  try {
    config = (await clients.lambda.send(new GetFunctionCommand({ FunctionName: functionName })))
      .Configuration as FunctionConfiguration;
  } catch (error) {
    return [
      fail(
        'function',
        `${functionName} cannot be read: ${describe(error)}`,
        'check the name and the region (--region), and that you may lambda:GetFunction',
      ),
    ];
  }
  const { checks, deployment: at } = checkFunction(config);
  if (!at) return checks;
  const ecs = ecsReads(clients.ecs);
  checks.push(await checkCluster(ecs, at));
  const { check, definition } = await checkTaskDefinition(ecs, at);
  checks.push(check);
  const simulate = simulateWith(clients.iam);
  if (definition)
    checks.push(await checkRole('function role', at.role, wrapperCalls(at, definition), simulate));
  checks.push(await checkRole('task role', definition?.taskRoleArn, runnerCalls(at), simulate));
  checks.push(await checkNetwork(ec2Reads(clients.ec2), at));
  checks.push(await checkSafetyNet(clients.lambda, functionName));
  const reads = safetyNetReads(clients);
  checks.push(await checkWatchdog(reads, at));
  checks.push(await checkBucketRules(reads, at));
  return checks;
}

/** An invocation that dies in Lambda anyway reaches the safety net: an on-failure destination is set. */
async function checkSafetyNet(lambda: LambdaClient, functionName: string): Promise<Check> {
  const { GetFunctionEventInvokeConfigCommand } = await import('@aws-sdk/client-lambda');
  const missing = fail(
    'safety net',
    `${functionName} has no on-failure destination: an invocation that dies in Lambda (a crash, out of memory) is lost`,
    'deploy FargateFallback with its safety net (the default), which makes its relaunch function the on-failure destination, or set one',
  );
  try {
    const config = await lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: functionName }));
    const destination = config.DestinationConfig?.OnFailure?.Destination;
    return destination ? pass('safety net', `failures go to ${destination}`) : missing;
  } catch (error) {
    if ((error as { name?: string }).name === 'ResourceNotFoundException') return missing;
    return fail(
      'safety net',
      `GetFunctionEventInvokeConfig failed: ${describe(error)}`,
      'run the doctor with lambda:GetFunctionEventInvokeConfig',
    );
  }
}
