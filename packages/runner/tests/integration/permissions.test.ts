import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  type AuditedCall,
  handedOffEnvelope,
  LocalControlPlane,
  type LocalS3,
  NoLauncher,
  startS3,
} from '@immortal-lambda/local';
import { ENV, type Envelope, outcomeKey } from '@immortal-lambda/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { runCli } from '../helpers/run-cli.js';
import { buildZip } from '../helpers/zip-writer.js';

// S3 as AWS answers the task role the construct grants: objects under the function's prefixes,
// and listings only of its journal and resume keys. A missing key it may not list is a 403.
const BUCKET = 'enforced';
const PREFIX = 'immortal-lambda/outcomes/';
const LISTABLE = /^immortal-lambda\/outcomes\/[^/]+\/[^/]+\/(journal|resume)\.json$/;
const TASK_ROLE = 'TASKROLE';
const NO_LIST_ROLE = 'NOLISTROLE';
const OPERATOR = 'OPERATOR';

function authorize(call: AuditedCall): boolean {
  if (call.accessKeyId === OPERATOR) return true;
  if (call.action === 's3:GetObject' || call.action === 's3:PutObject')
    return call.resource.startsWith(`arn:aws:s3:::${BUCKET}/immortal-lambda/`);
  if (call.action === 's3:ListBucket')
    return call.accessKeyId === TASK_ROLE && LISTABLE.test(call.context['s3:prefix'] ?? '');
  return false;
}

const plane = new LocalControlPlane({ launcher: new NoLauncher() });
let s3: LocalS3;
let operator: S3Client;
let scratch: string;
let baseEnv: Record<string, string>;

const envelope = (event: unknown): Envelope =>
  handedOffEnvelope({ functionName: 'echo', version: '1', handler: 'index.handler', event });

const run = (value: Envelope, extra: Record<string, string> = {}, onLine?: (line: string) => void) => {
  const sandbox = mkdtempSync(join(scratch, 'sandbox-'));
  return runCli(
    {
      ...baseEnv,
      [ENV.envelope]: JSON.stringify(value),
      [ENV.taskRoot]: join(sandbox, 'task'),
      [ENV.layersRoot]: join(sandbox, 'opt'),
      ...extra,
    },
    onLine ? { onLine } : {},
  );
};

beforeAll(async () => {
  const url = await plane.start();
  s3 = await startS3({ bucket: BUCKET, authorize });
  operator = new S3Client({
    region: 'eu-west-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: OPERATOR, secretAccessKey: 'x' },
  });
  plane.registerFunction({
    name: 'echo',
    zip: buildZip([{ name: 'index.js', data: 'exports.handler = async (event) => ({ echoed: event });' }]),
    handler: 'index.handler',
  });
  scratch = mkdtempSync(join(tmpdir(), 'runner-permissions-'));
  baseEnv = {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: TASK_ROLE,
    AWS_SECRET_ACCESS_KEY: 'x',
    AWS_ENDPOINT_URL_LAMBDA: url,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_ECS: 'http://127.0.0.1:9',
    [ENV.payloadBucket]: BUCKET,
  };
});

afterAll(async () => {
  await plane.stop();
  await s3.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe('the runner under the permissions S3 enforces (a missing key is 403 to a role that may not list the bucket)', () => {
  it('runs a relaunch whose invocation saved no journal: the 403 is told apart from a denial by listing the key', async () => {
    // Prepare
    const value = envelope({ id: 1 });

    // Act
    const result = await run(value, { [ENV.attempt]: '2' });

    // Assess
    expect(result.outcome).toMatchObject({ outcome: 'success' });
    expect(result.code).toBe(EXIT_CODES.success);
    expect(s3.audit.some((call) => call.action === 's3:ListBucket' && call.accessKeyId === TASK_ROLE)).toBe(
      true,
    );
  });

  it('fails a relaunch loudly, naming the grant, when neither the journal nor its listing may be read', async () => {
    // Prepare
    const value = envelope({ id: 2 });

    // Act
    const result = await run(value, { [ENV.attempt]: '2', AWS_ACCESS_KEY_ID: NO_LIST_ROLE });

    // Assess
    expect(result.code).toBe(EXIT_CODES.badInput);
    expect(JSON.stringify(result.outcome)).toMatch(/cannot be told: grant the task role s3:ListBucket/);
  });

  it('keeps a pre-warmed task waiting while its resume object does not exist yet, and runs once it is written', async () => {
    // Prepare
    const value = envelope({ id: 3 });
    const key = outcomeKey(PREFIX, 'echo', value.invocation.awsRequestId, 'resume');
    let written = false;
    const writeWhenWaiting = (line: string) => {
      if (written || !line.includes('Getting ready in standby')) return;
      written = true;
      setTimeout(() => {
        void operator.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: key,
            Body: JSON.stringify(value),
            ContentType: 'application/json',
          }),
        );
      }, 800);
    };

    // Act
    const result = await run(value, { [ENV.standby]: `s3://${BUCKET}/${key}` }, writeWhenWaiting);

    // Assess
    expect(result.code, JSON.stringify(result.outcome)).toBe(EXIT_CODES.success);
    expect(result.outcome).toMatchObject({ outcome: 'success' });
    const polls = s3.audit.filter((call) => call.action === 's3:GetObject' && call.resource.endsWith(key));
    expect(polls.length).toBeGreaterThan(1);
    // It took the invocation before calling the handler.
    const claim = await s3.readText(key.replace(/resume\.json$/, 'claim.json'));
    expect(JSON.parse(String(claim))).toMatchObject({ kind: 'immortal-lambda.claim', leg: 'runner' });
  });

  it('calls no handler when Lambda took the invocation first: told to go, it finds the claim taken and was not needed', async () => {
    // Prepare: the handler finished in Lambda while the task was told to go, and Lambda claimed it.
    const value = envelope({ id: 4 });
    const id = value.invocation.awsRequestId;
    const put = (entry: 'resume' | 'claim', body: unknown) =>
      operator.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: outcomeKey(PREFIX, 'echo', id, entry),
          Body: JSON.stringify(body),
        }),
      );
    await put('resume', value);
    await put('claim', {
      kind: 'immortal-lambda.claim',
      requestId: id,
      leg: 'lambda',
      at: new Date().toISOString(),
    });

    // Act
    const result = await run(value, {
      [ENV.standby]: `s3://${BUCKET}/${outcomeKey(PREFIX, 'echo', id, 'resume')}`,
    });

    // Assess
    expect(result.code).toBe(EXIT_CODES.success);
    expect(result.outcome).toMatchObject({
      outcome: 'not-needed',
      reason: 'the invocation finished in Lambda while this task was told to go',
    });
    const records = await s3.keys(`${PREFIX}echo/${id}/`);
    expect(records.filter((key) => /attempt-\d+\.json$/.test(key))).toEqual([]);
  });
});
