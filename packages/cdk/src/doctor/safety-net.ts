import { ENV } from '@immortal-lambda/protocol';
import { type Check, describe, fail, pass } from './check.js';
import type { Deployment } from './deployment.js';

/** A rule of the default event bus, as EventBridge's ListRules gives it. */
export interface RuleDescription {
  name: string;
  eventPattern: string | undefined;
  state: string | undefined;
}

/** One expiration rule of the bucket's lifecycle configuration. */
export interface LifecycleDescription {
  prefix: string;
  enabled: boolean;
  expirationDays: number | undefined;
}

/** The reads the safety-net and bucket checks make (EventBridge, Lambda, S3). */
export interface SafetyNetReads {
  rules(): Promise<RuleDescription[]>;
  targets(rule: string): Promise<string[]>;
  /** A function's variables (GetFunctionConfiguration). */
  variables(functionArn: string): Promise<Record<string, string>>;
  /** The bucket's lifecycle rules; `undefined` when it has none. */
  lifecycle(bucket: string): Promise<LifecycleDescription[] | undefined>;
}

const lastSegment = (value: string) => value.slice(value.lastIndexOf('/') + 1);
const familyOf = (taskDefinition: string) => lastSegment(taskDefinition).replace(/:\d+$/, '');

/** Whether a rule's pattern matches STOPPED runner tasks of the deployment's cluster and family. */
function matchesRunnerStops(pattern: string | undefined, at: Deployment): boolean {
  let parsed: { source?: unknown; detail?: Record<string, unknown> };
  try {
    parsed = JSON.parse(pattern ?? '{}');
  } catch {
    return false;
  }
  const has = (list: unknown, test: (value: string) => boolean) =>
    Array.isArray(list) && list.some((value) => typeof value === 'string' && test(value));
  const detail = parsed.detail ?? {};
  return (
    has(parsed.source, (value) => value === 'aws.ecs') &&
    has(detail.lastStatus, (value) => value === 'STOPPED') &&
    has(detail.clusterArn, (value) => lastSegment(value) === lastSegment(at.cluster)) &&
    has(detail.group, (value) => value === `family:${familyOf(at.taskDefinition)}`)
  );
}

/**
 * The safety net's watchdog is wired: an enabled rule sends STOPPED runner tasks of the function's
 * cluster and family to a function that serves it (its `FARGATE_FALLBACK_FUNCTION_ARN` names it).
 */
export async function checkWatchdog(reads: SafetyNetReads, at: Deployment): Promise<Check> {
  const family = familyOf(at.taskDefinition);
  const missing = fail(
    'watchdog',
    `no EventBridge rule sends STOPPED runner tasks of ${family} on cluster ${lastSegment(at.cluster)} to a watchdog: a task interrupted on Spot, killed or never started is not relaunched`,
    `deploy FargateFallback with its safety net (the default); a rule of your own must match source aws.ecs, detail.lastStatus STOPPED, the cluster's ARN and group "family:${family}", and target a taskWatchdog function`,
  );
  let rules: RuleDescription[];
  try {
    rules = (await reads.rules()).filter((rule) => matchesRunnerStops(rule.eventPattern, at));
  } catch (error) {
    return fail(
      'watchdog',
      `EventBridge's rules cannot be read: ${describe(error)}`,
      'run the doctor with events:ListRules and events:ListTargetsByRule',
    );
  }
  const enabled = rules.filter((rule) => rule.state === 'ENABLED');
  if (rules.length > 0 && enabled.length === 0) {
    const names = rules.map((rule) => rule.name).join(', ');
    return fail(
      'watchdog',
      `the rule ${names} is ${rules[0]?.state}: stopped runner tasks reach no watchdog`,
      `enable it: aws events enable-rule --name ${rules[0]?.name}`,
    );
  }
  for (const rule of enabled) {
    for (const target of await reads.targets(rule.name)) {
      if (!target.includes(':lambda:')) continue;
      const variables = await reads.variables(target);
      const served = (variables[ENV.failedFunction] ?? '')
        .split(',')
        .map((arn) => /:function:([^:]+)/.exec(arn)?.[1] ?? arn.trim());
      // A watchdog given one function's placement serves that function's runner family.
      const placement = variables[ENV.taskDefinition];
      const placed = placement !== undefined && familyOf(placement) === family;
      if (served.includes(at.functionName) || (placed && !variables[ENV.failedFunction])) {
        return pass(
          'watchdog',
          `the rule ${rule.name} sends its STOPPED runner tasks to ${target.split(':')[6]}, which serves it`,
        );
      }
      return fail(
        'watchdog',
        `the rule ${rule.name} sends STOPPED runner tasks of ${family} to ${target}, whose ${ENV.failedFunction} does not name ${at.functionName}: it would leave them alone`,
        `add ${at.functionArn} to that watchdog's ${ENV.failedFunction} (the construct does it for every fallback on the cluster)`,
      );
    }
  }
  return missing;
}

/**
 * The payload bucket forgets what it keeps for each invocation: envelopes (the events) and outcome
 * records expire by lifecycle rules covering their prefixes.
 */
export async function checkBucketRules(reads: SafetyNetReads, at: Deployment): Promise<Check> {
  if (!at.bucket)
    return pass('bucket rules', `no payload bucket is set (${ENV.payloadBucket}): nothing is kept`);
  let rules: LifecycleDescription[] | undefined;
  try {
    rules = await reads.lifecycle(at.bucket);
  } catch (error) {
    return fail(
      'bucket rules',
      `the lifecycle rules of ${at.bucket} cannot be read: ${describe(error)}`,
      'run the doctor with s3:GetLifecycleConfiguration on the bucket',
    );
  }
  const expiring = (prefix: string) =>
    (rules ?? []).find(
      (rule) => rule.enabled && rule.expirationDays !== undefined && prefix.startsWith(rule.prefix),
    );
  const kept = [
    ["envelopes (the invocations' events)", at.payloadPrefix],
    ['outcome records', at.outcomePrefix],
  ].filter(([, prefix]) => !expiring(String(prefix)));
  if (kept.length > 0) {
    return fail(
      'bucket rules',
      `${kept.map(([what, prefix]) => `${what} under ${at.bucket}/${prefix}`).join(' and ')} never expire: the bucket keeps every event handed off, for ever`,
      'let the construct own the bucket, or pass envelopeExpiration and outcomeExpiration with a bucket of the same app; for a bucket made elsewhere, add expiration rules for those prefixes where it is defined',
    );
  }
  const days = (prefix: string) => expiring(prefix)?.expirationDays;
  return pass(
    'bucket rules',
    `envelopes expire after ${days(at.payloadPrefix)} days, outcome records after ${days(at.outcomePrefix)} days`,
  );
}
