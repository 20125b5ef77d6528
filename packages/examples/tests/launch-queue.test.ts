import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { AWS_LIMITS, LocalControlPlane, type LocalS3, NoLauncher, startS3 } from '@immortal-lambda/local';
import { type HandoffAnswer, withFargateFallback } from '@immortal-lambda/middleware';
import { getInvocationStatus } from '@immortal-lambda/middleware/status';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { burstContext } from '../bench/retried-burst.js';
import {
  clientsOf,
  type Deployment,
  deployExample,
  isBucketWideListing,
  registerTaskDefinitions,
  startLaunchers,
} from '../lib/deployment.js';

// Each invocation hands off 1 s in, 5 s before its deadline: room for a burst's calls on a busy machine.
const REMAINING_MS = 6_000;
const MARGIN_MS = 5_000;
const BURST = 60;

let s3: LocalS3;
let plane: LocalControlPlane;
let deployment: Deployment;

beforeAll(async () => {
  // The construct's grants enforced, and AWS's rates, RunTask's slowed from 20 calls a second to
  // 5: the burst's handoffs all come between 1 s in and the deadline, so at most 20 + 5 × 5 of
  // its 60 RunTask calls can be answered however slowly a loaded machine makes them.
  deployment = deployExample({ functions: [{ name: 'report-job', envelopeTransport: 'auto' }] });
  s3 = await startS3({ bucket: deployment.bucket, authorize: deployment.authorize });
  plane = new LocalControlPlane({
    launcher: new NoLauncher(),
    limits: { ...AWS_LIMITS, runTask: { ...AWS_LIMITS.runTask, perSecond: 5 } },
    s3Endpoint: s3.endpoint,
    authorize: deployment.authorize,
    clusters: [deployment.cluster],
    subnets: deployment.subnets,
  });
  registerTaskDefinitions(plane, deployment);
  await plane.start();
  startLaunchers(plane, deployment, { plane: plane.url, s3: s3.endpoint, region: plane.region });
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
  expect(deployment.refused.filter((call) => !isBucketWideListing(call))).toEqual([]);
});

describe('a burst past the launch rate, with the construct’s launch queue', () => {
  it('hands every invocation off before its deadline, none failed, each started once by its own token', async () => {
    // Prepare: the function as deployed, signing as its role
    const deployed = deployment.functions['report-job'];
    if (!deployed?.launcher) throw new Error('the example function has no launch queue');
    const at = { plane: plane.url, s3: s3.endpoint, region: plane.region };
    const { ecsClient, s3Client } = clientsOf(deployed.function, at);
    const credentials = {
      accessKeyId: String(deployed.function.environment.AWS_ACCESS_KEY_ID),
      secretAccessKey: 'local',
    };
    const handler = withFargateFallback(
      (_event: unknown, _context, { signal }) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      {
        env: { ...deployed.variables, AWS_REGION: plane.region, AWS_LAMBDA_FUNCTION_VERSION: '1' },
        marginMs: MARGIN_MS,
        metrics: false,
        logger: { info: () => {}, error: () => {} },
        ecsClient,
        s3Client,
        sqsClient: new SQSClient({
          region: plane.region,
          endpoint: plane.url,
          credentials,
          useQueueUrlAsEndpoint: false,
        }),
      },
    );
    const ids = Array.from({ length: BURST }, (_, i) => `queued-${Date.now().toString(36)}-${i}`);

    // Act: all at once
    const answers = await Promise.all(
      ids.map(async (id) => {
        const deadline = Date.now() + REMAINING_MS;
        const answer = (await handler({ id }, burstContext(id, deadline) as never)) as HandoffAnswer;
        return { id, answer, lateBy: Date.now() - deadline };
      }),
    );
    const startedFor = (id: string) =>
      plane.tasks().filter((task) => task.startedBy === `immortal-lambda/${id}`);
    const until = Date.now() + 30_000;
    while (Date.now() < until && ids.some((id) => startedFor(id).length === 0))
      await new Promise((resolve) => setTimeout(resolve, 100));

    // Assess
    const queued = answers.filter(({ answer }) => answer.status === 'queued');
    expect(queued.length).toBeGreaterThan(0);
    expect(answers.filter(({ lateBy }) => lateBy >= 0)).toEqual([]);
    expect(ids.map((id) => startedFor(id).length)).toEqual(ids.map(() => 1));
    // Each queued task started under the invocation's own token.
    const tokens = plane
      .runTaskRequests()
      .filter((request) => request.startedBy === `immortal-lambda/${queued[0]?.id}`)
      .map((request) => request.clientToken);
    expect(new Set(tokens)).toEqual(new Set([queued[0]?.id]));
    expect(plane.limiter.refused.get('runTask')).toBeGreaterThan(0);
    // Read as an operator would (the function's own role lists no records).
    const operator = new S3Client({
      region: plane.region,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: deployment.operatorKey, secretAccessKey: 'S3RVER' },
    });
    const status = await getInvocationStatus(
      { functionName: 'report-job', requestId: String(queued[0]?.id) },
      { bucket: deployment.bucket, s3Client: operator },
    );
    expect(status).toMatchObject({
      status: 'handed-off',
      taskArn: startedFor(String(queued[0]?.id))[0]?.arn,
    });
  }, 60_000);
});
