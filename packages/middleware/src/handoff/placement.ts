import type { TaskOverride } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  DEFAULT_OUTCOME_PREFIX,
  ENV,
  envelopeKey,
  RUN_TASK_OVERRIDES_LIMIT,
} from '@immortal-lambda/protocol';
import type { ResolvedConfig } from '../config.js';
import { HandoffError } from '../errors.js';
import { spillEnvelope } from '../spill.js';
import type { Clock } from '../types.js';

/** Where the envelope travels: the container override that carries it, and its location for the log. */
export interface Placement {
  overrides: TaskOverride;
  /** `inline`, or the `s3://` URI of the spilled envelope. */
  envelopeLocation: string;
}

/**
 * Places the envelope: inline in RunTask's container override when it fits ECS's limit, else
 * (or always, with the `s3` transport, so that the event never shows in DescribeTasks) written to
 * the payload bucket, the override carrying its `s3://` URI. Too large without a bucket is a
 * {@link HandoffError} that says what to set.
 */
export async function placeEnvelope(input: {
  config: ResolvedConfig;
  json: string;
  functionName: string;
  requestId: string;
  /** More variables for the runner (a standby task's resume location, metrics settings). */
  extra: readonly { name: string; value: string }[];
  s3: () => Promise<S3Client>;
  clock: Clock;
  random: () => number;
  signal: AbortSignal;
}): Promise<Placement> {
  const { config, json, extra, requestId } = input;
  const outcomes = { bucket: config.payloadBucket, prefix: config.outcomePrefix };
  const inline = buildOverrides(config.containerName, json, outcomes, extra);
  const size = overridesSize(inline);
  if (config.envelopeTransport !== 's3' && size <= RUN_TASK_OVERRIDES_LIMIT) {
    return { overrides: inline, envelopeLocation: 'inline' };
  }
  const bucket = config.payloadBucket;
  if (bucket === undefined) {
    throw new HandoffError(
      'payload-too-large',
      `the envelope makes RunTask's overrides ${size} characters, over ECS's limit of ${RUN_TASK_OVERRIDES_LIMIT}; set ${ENV.payloadBucket} (or the payloadBucket option) to an S3 bucket the function may write to, so large envelopes travel through S3`,
      { requestId },
    );
  }
  const location = await spillEnvelope({
    client: await input.s3(),
    bucket,
    key: envelopeKey(config.payloadPrefix, input.functionName, requestId),
    body: json,
    requestId,
    clock: input.clock,
    random: input.random,
    signal: input.signal,
  });
  return {
    overrides: buildOverrides(config.containerName, location, outcomes, extra),
    envelopeLocation: location,
  };
}

/**
 * The container override that carries the envelope (inline JSON or an s3:// URI), and where the
 * runner writes its outcome records: the payload bucket, and the prefix when it is not the default;
 * `extra` adds variables (a standby task's resume location).
 */
export function buildOverrides(
  containerName: string,
  envelopeValue: string,
  outcomes: { bucket: string | undefined; prefix: string } = {
    bucket: undefined,
    prefix: DEFAULT_OUTCOME_PREFIX,
  },
  extra: readonly { name: string; value: string }[] = [],
): TaskOverride {
  return {
    containerOverrides: [
      {
        name: containerName,
        environment: [
          { name: ENV.envelope, value: envelopeValue },
          ...(outcomes.bucket ? [{ name: ENV.payloadBucket, value: outcomes.bucket }] : []),
          ...(outcomes.bucket && outcomes.prefix !== DEFAULT_OUTCOME_PREFIX
            ? [{ name: ENV.outcomePrefix, value: outcomes.prefix }]
            : []),
          ...extra,
        ],
      },
    ],
  };
}

/**
 * The size RunTask counts against its 8192-character limit: the serialised overrides, JSON
 * included. UTF-8 bytes are counted, which is never less than characters.
 */
export function overridesSize(overrides: TaskOverride): number {
  return Buffer.byteLength(JSON.stringify(overrides), 'utf8');
}
