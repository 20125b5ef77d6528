import type { ECSClient } from '@aws-sdk/client-ecs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { ResolvedConfig } from '../config.js';
import { HandoffError } from '../errors.js';
import { loadEcs, loadS3, loadSqs } from '../sdk.js';
import { rehearse } from './rehearsal.js';

/** What {@link HandoffClients.warmUp} reads of the configuration. */
type WarmUpConfig = Pick<
  ResolvedConfig,
  'cluster' | 'taskDefinition' | 'payloadBucket' | 'outcomePrefix' | 'launchQueue'
>;

/**
 * The ECS, S3 and SQS clients of the handoff: the ones given, else made on first use (their SDK
 * loaded then), one of each however many handoffs ask at once. An SDK that cannot be loaded fails
 * the handoff with reason `sdk-unavailable` (and is tried again by the next one).
 */
export class HandoffClients {
  readonly ecs: (requestId: string) => Promise<ECSClient>;
  /** The SQS client of the launch queue (the queue URL's host is not its endpoint: the SDK's settings are). */
  readonly sqs: (requestId: string) => Promise<SQSClient>;
  /** The S3 client of the payload bucket. */
  readonly s3: (requestId: string) => Promise<S3Client>;
  /** The clients made here (not given): only these are taken through a rehearsal. */
  readonly #made = new WeakSet<object>();
  /** The environment the made clients read their credentials from: the process's, as the SDK does. */
  readonly #sdkEnv: Readonly<Record<string, string | undefined>>;

  constructor(
    ecs: ECSClient | undefined,
    s3: S3Client | undefined,
    sqs?: SQSClient | undefined,
    sdkEnv: Readonly<Record<string, string | undefined>> = process.env,
  ) {
    this.#sdkEnv = sdkEnv;
    this.ecs = shared(ecs, async (id) => {
      const { ECSClient } = await load(loadEcs, '@aws-sdk/client-ecs', id);
      return this.#keep(new ECSClient({ maxAttempts: 1 }));
    });
    this.sqs = shared(sqs, async (id) => {
      const { SQSClient } = await load(loadSqs, '@aws-sdk/client-sqs', id);
      return this.#keep(new SQSClient({ maxAttempts: 1, useQueueUrlAsEndpoint: false }));
    });
    this.s3 = shared(s3, async (id) => {
      const { S3Client } = await load(loadS3, '@aws-sdk/client-s3', id);
      return this.#keep(new S3Client({ maxAttempts: 1 }));
    });
  }

  #keep<T extends object>(client: T): T {
    this.#made.add(client);
    return client;
  }

  /**
   * Makes the clients a handoff of this configuration calls (ECS always, S3 with a payload
   * bucket, SQS with a launch queue) and, when the credentials are in the process's environment
   * as on Lambda, rehearses each made client's call (see {@link rehearse}): nothing is sent.
   * Without them the rehearsal would ask the credential chain's other sources (the instance
   * metadata endpoint among them), so it is left out. Never throws: a client that cannot be made
   * fails the handoff.
   */
  async warmUp(config: WarmUpConfig): Promise<void> {
    const id = 'load-ahead';
    const env = this.#sdkEnv;
    const rehearsing = Boolean(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY);
    const { launchQueue, payloadBucket } = config;
    /** The client made (or given); one made here rehearsed with the command `command` builds. */
    const ready = async (pending: Promise<object>, command: () => Promise<unknown>, answer = '{}') => {
      const client = await pending;
      if (rehearsing && this.#made.has(client)) await rehearse(client, await command(), answer);
    };
    await Promise.allSettled([
      ready(this.ecs(id), async () => {
        const { RunTaskCommand } = await loadEcs();
        return new RunTaskCommand({
          cluster: config.cluster,
          taskDefinition: config.taskDefinition,
          count: 1,
        });
      }),
      payloadBucket &&
        ready(
          this.s3(id),
          async () => {
            const { PutObjectCommand } = await loadS3();
            return new PutObjectCommand({
              Bucket: payloadBucket,
              Key: `${config.outcomePrefix}rehearsal`,
              Body: '{}',
            });
          },
          '',
        ),
      launchQueue &&
        ready(this.sqs(id), async () => {
          const { SendMessageCommand } = await loadSqs();
          return new SendMessageCommand({ QueueUrl: launchQueue, MessageBody: '{}' });
        }),
    ]);
  }
}

/** The client given, or the one `make` makes at the first call, shared by later calls; a failed make is tried again. */
function shared<T>(given: T | undefined, make: (requestId: string) => Promise<T>) {
  let made: Promise<T> | undefined = given === undefined ? undefined : Promise.resolve(given);
  return (requestId: string): Promise<T> => {
    made ??= make(requestId).catch((error: unknown) => {
      made = undefined;
      throw error;
    });
    return made;
  };
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
