import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import { HandoffError } from '../errors.js';
import { loadEcs, loadS3 } from '../sdk.js';

/**
 * The ECS and S3 clients of the handoff: the ones given, else made on first use (their SDK
 * loaded then). An SDK that cannot be loaded fails the handoff with reason `sdk-unavailable`.
 */
export class HandoffClients {
  #ecs: ECSClient | undefined;
  #s3: S3Client | undefined;

  constructor(ecs: ECSClient | undefined, s3: S3Client | undefined) {
    this.#ecs = ecs;
    this.#s3 = s3;
  }

  async ecs(requestId: string): Promise<ECSClient> {
    if (this.#ecs) return this.#ecs;
    const { ECSClient } = await load(loadEcs, '@aws-sdk/client-ecs', requestId);
    this.#ecs = new ECSClient({ maxAttempts: 1 });
    return this.#ecs;
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
