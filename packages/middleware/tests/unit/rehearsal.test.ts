import { Readable } from 'node:stream';
import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { rehearse } from '../../src/handoff/rehearsal.js';

/** The request as the stack built it. */
interface HttpRequest {
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };

type Next = (args: { request: unknown }) => Promise<unknown>;

/** A real client whose stack shows each request it finishes building (signed, about to go out). */
function watched<T extends ECSClient | S3Client>(client: T) {
  const built: HttpRequest[] = [];
  const stack = client.middlewareStack as unknown as {
    add(middleware: (next: Next) => Next, options: Record<string, string>): void;
  };
  stack.add(
    (next) => async (args) => {
      built.push(args.request as HttpRequest);
      return next(args);
    },
    { step: 'finalizeRequest', priority: 'low', name: 'watchBuiltRequests' },
  );
  const requestHandler = client.config.requestHandler as unknown as {
    handle: (request: HttpRequest) => Promise<unknown>;
  };
  const handle = vi.spyOn(requestHandler, 'handle');
  const send = vi.spyOn(client as { send: (command: unknown) => Promise<unknown> }, 'send');
  return { client, built, handle, send };
}

const answer = (body: string) => ({
  response: { statusCode: 200, headers: {}, body: Readable.from([Buffer.from(body)]) },
});

describe('rehearse', () => {
  afterEach(() => vi.restoreAllMocks());

  it('takes a RunTask through endpoint, credentials, signing and serializing, and sends nothing', async () => {
    // Prepare
    const { client, built, handle, send } = watched(
      new ECSClient({ region: 'eu-west-1', credentials, endpoint: 'http://127.0.0.1:9' }),
    );

    // Act
    await rehearse(
      client,
      new RunTaskCommand({ cluster: 'jobs', taskDefinition: 'runner:1', count: 1 }),
      '{}',
    );

    // Assess
    expect(built).toHaveLength(1);
    const request = built[0] as HttpRequest;
    expect(request.headers['x-amz-target']).toBe('AmazonEC2ContainerServiceV20141113.RunTask');
    expect(request.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/ecs\//,
    );
    expect(JSON.parse(String(request.body))).toMatchObject({ cluster: 'jobs', taskDefinition: 'runner:1' });
    expect(handle).not.toHaveBeenCalled();
    expect(send).not.toHaveBeenCalled();
  });

  it('leaves the client as it was: its next call goes out through its own request handler', async () => {
    // Prepare
    const { client, handle } = watched(new S3Client({ region: 'eu-west-1', credentials }));
    handle.mockImplementation(async () => answer(''));
    await rehearse(client, new PutObjectCommand({ Bucket: 'payloads', Key: 'rehearsal', Body: '{}' }), '');

    // Act
    await client.send(new PutObjectCommand({ Bucket: 'payloads', Key: 'real', Body: '{"a":1}' }));

    // Assess
    expect(handle).toHaveBeenCalledTimes(1);
    expect(handle.mock.calls[0]?.[0].path).toMatch(/\/real$/);
  });

  it('resolves quietly when the credentials cannot be had, having asked for them', async () => {
    // Prepare
    const missing = vi.fn(async () => {
      throw new Error('no credentials');
    });
    const { client, handle } = watched(new ECSClient({ region: 'eu-west-1', credentials: missing }));

    // Act
    const rehearsal = rehearse(
      client,
      new RunTaskCommand({ cluster: 'jobs', taskDefinition: 'runner:1' }),
      '{}',
    );

    // Assess
    await expect(rehearsal).resolves.toBeUndefined();
    expect(missing).toHaveBeenCalled();
    expect(handle).not.toHaveBeenCalled();
  });

  it('does nothing with a client or a command of another shape (a hand-written fake)', async () => {
    // Prepare
    const fake = { send: vi.fn(async () => ({})) };

    // Act
    await rehearse(fake, { input: {} }, '{}');
    await rehearse(new ECSClient({ region: 'eu-west-1', credentials }), { input: {} }, '{}');

    // Assess
    expect(fake.send).not.toHaveBeenCalled();
  });
});
