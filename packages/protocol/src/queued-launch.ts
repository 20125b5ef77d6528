import type { CapacityOption } from './defaults.js';
import { EnvelopeError } from './errors.js';

export const QUEUED_LAUNCH_KIND = 'immortal-lambda.queued-launch';
export const QUEUED_LAUNCH_VERSION = 1;

/**
 * A handoff whose task could not start at once (Fargate's launch rate, or no capacity), as the
 * wrapper sends it to the launch queue: what the launcher needs to make the very RunTask call the
 * wrapper would have made (the same placement, overrides and client token, so that ECS starts one
 * task whatever was tried before), and where the invocation's records go.
 *
 * @example
 * ```ts
 * import type { QueuedLaunch } from '@immortal-lambda/protocol';
 * const late = (launch: QueuedLaunch, now: number) => now - Date.parse(launch.queuedAt);
 * ```
 */
export interface QueuedLaunch {
  kind: typeof QUEUED_LAUNCH_KIND;
  version: typeof QUEUED_LAUNCH_VERSION;
  requestId: string;
  functionName: string;
  functionVersion: string;
  placement: {
    cluster: string;
    taskDefinition: string;
    containerName: string;
    subnets: string[];
    securityGroups: string[];
    assignPublicIp: boolean;
    capacity: CapacityOption;
  };
  /** RunTask's `overrides`, as the wrapper built them (the envelope inline or its `s3://` URI). */
  overrides: { containerOverrides: { name: string; environment: { name: string; value: string }[] }[] };
  /** Where the invocation's outcome records are. */
  records: { bucket: string; prefix: string };
  envelopeLocation: string;
  envelopeBytes: number;
  queuedAt: string;
  /** When the handoff began in Lambda (epoch ms): the runner's timeline starts there. */
  handoffAt: number;
}

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isTextList = (value: unknown): value is string[] => Array.isArray(value) && value.every(isText);

/**
 * Reads a launch queue message, checking every field the launcher relies on. Throws
 * {@link EnvelopeError} naming each problem: a message that is not one of ours is not started.
 *
 * @example
 * ```ts
 * import { parseQueuedLaunch } from '@immortal-lambda/protocol';
 * const launch = parseQueuedLaunch(record.body);
 * ```
 */
export function parseQueuedLaunch(text: string): QueuedLaunch {
  let value: Partial<QueuedLaunch>;
  try {
    value = JSON.parse(text) as Partial<QueuedLaunch>;
  } catch (error) {
    throw new EnvelopeError('the launch queue message is not JSON', [], { cause: error });
  }
  const problems: string[] = [];
  if (value?.kind !== QUEUED_LAUNCH_KIND)
    throw new EnvelopeError(`the message is not a queued launch (kind ${String(value?.kind)})`);
  if (value.version !== QUEUED_LAUNCH_VERSION)
    problems.push(
      `version ${String(value.version)} is not ${QUEUED_LAUNCH_VERSION}: deploy the launcher of the wrapper's version`,
    );
  for (const field of [
    'requestId',
    'functionName',
    'functionVersion',
    'queuedAt',
    'envelopeLocation',
  ] as const)
    if (!isText(value[field])) problems.push(`${field} is missing`);
  const placement = value.placement;
  if (
    !placement ||
    !isText(placement.cluster) ||
    !isText(placement.taskDefinition) ||
    !isText(placement.containerName)
  )
    problems.push('placement needs cluster, taskDefinition and containerName');
  else if (
    !isTextList(placement.subnets) ||
    placement.subnets.length === 0 ||
    !isTextList(placement.securityGroups)
  )
    problems.push('placement needs subnets and securityGroups');
  if (!Array.isArray(value.overrides?.containerOverrides))
    problems.push('overrides.containerOverrides is missing');
  if (!isText(value.records?.bucket) || typeof value.records?.prefix !== 'string')
    problems.push('records needs bucket and prefix');
  if (typeof value.handoffAt !== 'number') problems.push('handoffAt is missing');
  if (problems.length > 0) throw new EnvelopeError('the queued launch cannot be started', problems);
  return value as QueuedLaunch;
}
