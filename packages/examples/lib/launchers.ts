import type { LocalControlPlane } from '@immortal-lambda/local';
import { launchQueued } from '@immortal-lambda/middleware/safety-net';
import type { SQSEvent } from 'aws-lambda';
import { clientsOf, type DeployedFunction, type Deployment, type Principal } from './deployment.js';
import type { SynthTemplate, TemplateNames } from './template-names.js';

/** The launcher and its queue as synthesised: the queue's visibility timeout and redrive policy. */
export function launcherOf(
  template: SynthTemplate,
  names: TemplateNames,
  launcher: Principal,
  queueUrl: string,
): NonNullable<DeployedFunction['launcher']> {
  const queueId = Object.keys(template.Resources).find(
    (id) => template.Resources[id]?.Type === 'AWS::SQS::Queue' && /SafetyNetLaunches[0-9A-F]{8}$/.test(id),
  );
  if (!queueId) throw new Error(`no launch queue in the template for ${queueUrl}`);
  const properties = template.Resources[queueId]?.Properties ?? {};
  const redrive = properties.RedrivePolicy as { deadLetterTargetArn: unknown; maxReceiveCount: number };
  return {
    ...launcher,
    queueUrl,
    visibilityTimeoutMs: Number(properties.VisibilityTimeout ?? 30) * 1000,
    maxReceiveCount: redrive.maxReceiveCount,
    deadLetterQueue: String(names.resolve(redrive.deadLetterTargetArn)).split(':').pop() ?? '',
  };
}

/**
 * Runs each deployed launcher as its event source mapping would: the plane makes its launch
 * queue (its visibility timeout and redrive policy as synthesised) and polls it into `launchQueued`,
 * signing as the launcher's role, ten messages a batch, two batches at once, as the construct
 * configures it.
 *
 * @example
 * ```ts
 * startLaunchers(plane, deployment, { plane: plane.url, s3: s3.endpoint, region: plane.region });
 * ```
 */
export function startLaunchers(
  plane: LocalControlPlane,
  deployment: Deployment,
  at: { plane: string; s3: string; region: string },
): void {
  const started = new Set<string>();
  for (const { launcher } of Object.values(deployment.functions)) {
    if (!launcher || started.has(launcher.queueUrl)) continue;
    started.add(launcher.queueUrl);
    const name = launcher.queueUrl.split('/').pop() ?? '';
    plane.queues.create(name, {
      visibilityTimeoutMs: launcher.visibilityTimeoutMs,
      maxReceiveCount: launcher.maxReceiveCount,
      deadLetterQueue: launcher.deadLetterQueue,
    });
    const { ecsClient, s3Client } = clientsOf(launcher, at);
    const handler = launchQueued({ ecsClient, s3Client });
    plane.queues.consume(
      launcher.queueUrl,
      (event) => handler(event as unknown as SQSEvent, { getRemainingTimeInMillis: () => 120_000 }),
      {
        batchSize: 10,
        maxConcurrency: 2,
      },
    );
  }
}
