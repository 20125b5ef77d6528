import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LocalControlPlane, type LocalS3, type LocalTask, startS3 } from '@immortal-lambda/local';
import type { HandoffReceipt } from '@immortal-lambda/middleware';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFixture } from './helpers/fixtures.js';
import { invokeLambda } from './helpers/lambda-leg.js';

const examples = join(import.meta.dirname, '..');
let s3: LocalS3;
let plane: LocalControlPlane;
let folder: string;
const logs: { task: LocalTask; line: string }[] = [];

beforeAll(async () => {
  folder = await bundleFixture('powertools', mkdtempSync(join(examples, 'dist', 'powertools-')));
  s3 = await startS3({ bucket: 'powertools' });
  plane = new LocalControlPlane({ s3Endpoint: s3.endpoint });
  plane.registerFunction({ name: 'powertools-report', folder, handler: 'index.handler' });
  plane.on('task-log', ({ task, line }: { task: LocalTask; line: string }) => logs.push({ task, line }));
  await plane.start();
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
  rmSync(folder, { recursive: true, force: true });
});

describe('a handler written with Powertools (Logger, Metrics, Tracer)', () => {
  it('logs with the original request id and function name, and publishes its metrics, in the runner', async () => {
    // Prepare
    const env = {
      ...plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket }),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    let requestId = '';

    // Act: 3 pages of 1 s, handed off 1.5 s in (a 4 s timeout less a 2.5 s margin, room for a first SDK
    // load on a busy machine): page 1 in Lambda, 2 and 3 on Fargate
    const { result, id } = await invokeLambda({
      name: 'powertools-report',
      folder,
      event: { pages: 3, pageMs: 1_000 },
      timeoutMs: 4_000,
      environment: { ...env, FARGATE_FALLBACK_MARGIN_MS: '2500' },
    });
    const receipt = result as HandoffReceipt;
    requestId = id;
    const task = await plane.waitForTask(receipt.taskArn, 30_000);

    // Assess
    expect(task.exitCode).toBe(0);
    const lines = logs
      .filter((entry) => entry.task.arn === receipt.taskArn)
      .map((entry) => {
        try {
          return JSON.parse(entry.line) as Record<string, unknown>;
        } catch {
          return { raw: entry.line };
        }
      });
    const pages = lines.filter((line) => line.message === 'page rendered');
    expect(pages.map((line) => line.page)).toEqual([2, 3]);
    for (const line of pages) {
      expect(line).toMatchObject({
        level: 'INFO',
        service: 'reports',
        function_request_id: requestId,
        function_name: 'powertools-report',
        runtime: 'fargate',
      });
    }
    const metric = lines.find((line) => line._aws && 'PagesRendered' in line);
    expect(metric).toMatchObject({ PagesRendered: 3, service: 'reports' });
    expect(lines.find((line) => line.message === 'report finished')).toMatchObject({
      function_request_id: requestId,
      runtime: 'fargate',
    });
  });
});
