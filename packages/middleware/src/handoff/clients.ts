import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { HandoffError } from '../errors.js';
import { loadEcs, loadS3, loadSqs } from '../sdk.js';

/**
 * The ECS, S3 and SQS clients of the handoff: the ones given, else made on first use (their SDK
 * loaded then). An SDK that cannot be loaded fails the handoff with reason `sdk-unavailable`.
 */
export class HandoffClients {
  #ecs: ECSClient | undefined;
  #s3: S3Client | undefined;

  constructor(ecs: ECSClient | undefined, s3: S3Client | undefined, sqs?: SQSClient | undefined) {
    this.#ecs = ecs;
    this.#s3 = s3;
    this.#sqs = sqs;
  }

  async ecs(requestId: string): Promise<ECSClient> {
    if (this.#ecs) return this.#ecs;
    const { ECSClient } = await load(loadEcs, '@aws-sdk/client-ecs', requestId);
    this.#ecs = new ECSClient({ maxAttempts: 1 });
    return this.#ecs;
  }

  #sqs: SQSClient | undefined;

  /** The SQS client of the launch queue (the queue URL's host is not its endpoint: the SDK's settings are). */
  async sqs(requestId: string): Promise<SQSClient> {
    if (this.#sqs) return this.#sqs;
    const { SQSClient } = await load(loadSqs, '@aws-sdk/client-sqs', requestId);
    this.#sqs = new SQSClient({ maxAttempts: 1, useQueueUrlAsEndpoint: false });
    return this.#sqs;
  }

  /** The S3 client of the payload bucket. */
  async s3(requestId: string): Promise<S3Client> {
    if (this.#s3) return this.#s3;
    const { S3Client } = await load(loadS3, '@aws-sdk/client-s3', requestId);
    this.#s3 = new S3Client({ maxAttempts: 1 });
    return this.#s3;
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
