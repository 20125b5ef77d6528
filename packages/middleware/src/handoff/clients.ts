import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { ResolvedConfig } from '../config.js';
import { HandoffError } from '../errors.js';
import { loadEcs, loadS3, loadSqs } from '../sdk.js';

/**
 * The ECS, S3 and SQS clients of the handoff: the ones given, else made on first use (their SDK
 * loaded then), one of each however many handoffs ask at once. An SDK that cannot be loaded fails
 * the handoff with reason `sdk-unavailable` (and is tried again by the next one).
 */
export class HandoffClients {
  #ecs: Promise<ECSClient> | undefined;
  #s3: Promise<S3Client> | undefined;
  #sqs: Promise<SQSClient> | undefined;

  constructor(ecs: ECSClient | undefined, s3: S3Client | undefined, sqs?: SQSClient | undefined) {
    if (ecs) this.#ecs = Promise.resolve(ecs);
    if (s3) this.#s3 = Promise.resolve(s3);
    if (sqs) this.#sqs = Promise.resolve(sqs);
  }

  ecs(requestId: string): Promise<ECSClient> {
    this.#ecs ??= load(loadEcs, '@aws-sdk/client-ecs', requestId).then(
      ({ ECSClient }) => new ECSClient({ maxAttempts: 1 }),
      (error: unknown) => this.#forget('ecs', error),
    );
    return this.#ecs;
  }

  /** The SQS client of the launch queue (the queue URL's host is not its endpoint: the SDK's settings are). */
  sqs(requestId: string): Promise<SQSClient> {
    this.#sqs ??= load(loadSqs, '@aws-sdk/client-sqs', requestId).then(
      ({ SQSClient }) => new SQSClient({ maxAttempts: 1, useQueueUrlAsEndpoint: false }),
      (error: unknown) => this.#forget('sqs', error),
    );
    return this.#sqs;
  }

  /** The S3 client of the payload bucket. */
  s3(requestId: string): Promise<S3Client> {
    this.#s3 ??= load(loadS3, '@aws-sdk/client-s3', requestId).then(
      ({ S3Client }) => new S3Client({ maxAttempts: 1 }),
      (error: unknown) => this.#forget('s3', error),
    );
    return this.#s3;
  }

  /**
   * Makes the clients a handoff of this configuration calls: ECS always, S3 with a payload
   * bucket, SQS with a launch queue. Never throws: a client that cannot be made fails the handoff.
   */
  async warmUp(config: Pick<ResolvedConfig, 'payloadBucket' | 'launchQueue'>): Promise<void> {
    const id = 'load-ahead';
    await Promise.allSettled([
      this.ecs(id),
      config.payloadBucket === undefined ? undefined : this.s3(id),
      config.launchQueue === undefined ? undefined : this.sqs(id),
    ]);
  }

  #forget(client: 'ecs' | 's3' | 'sqs', error: unknown): never {
    if (client === 'ecs') this.#ecs = undefined;
    else if (client === 's3') this.#s3 = undefined;
    else this.#sqs = undefined;
    throw error;
  }
}

async function load<T>(module: () => Promise<T>, name: string, requestId: string): Promise<T> {
  try {
    return await module();
  } catch (error) {
    throw new HandoffError('sdk-unavailable', `${name} could not be loaded; install it next to the handler`, {
      requestId,
      cause: error,
    });
  }
}
