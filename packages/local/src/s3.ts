import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { type AuditedCall, accessKeyOf } from './audit.js';

/**
 * A running S3 emulator (s3rver) for spilled envelopes.
 *
 * @example
 * ```ts
 * import { type LocalS3, startS3 } from '@immortal-lambda/local';
 * const s3: LocalS3 = await startS3();
 * await s3.stop();
 * ```
 */
export interface LocalS3 {
  endpoint: string;
  bucket: string;
  /** Every object call served, as IAM authorises it (s3:PutObject, s3:GetObject on the object). */
  audit: AuditedCall[];
  /** An object's text from the bucket, or undefined: read from the store, not audited. */
  readText(key: string): Promise<string | undefined>;
  /** The keys under a prefix in the bucket: read from the store, not audited. */
  keys(prefix: string): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Starts the S3 emulator on loopback with one bucket. Credentials are `S3RVER` / `S3RVER`, or
 * any pair when signatures are not checked (the default here).
 *
 * @example
 * ```ts
 * import { startS3 } from '@immortal-lambda/local';
 * const s3 = await startS3({ bucket: 'envelopes' });
 * process.env.AWS_ENDPOINT_URL_S3 = s3.endpoint;
 * ```
 */
export async function startS3(options: { bucket?: string; port?: number } = {}): Promise<LocalS3> {
  const directory = mkdtempSync(join(tmpdir(), 'immortal-s3-'));
  const bucket = options.bucket ?? 'immortal-envelopes';
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  keepKeysStorable(server);
  const { port } = await server.run();
  const store = (server as unknown as { store: ObjectStore }).store;
  // A recording front: each call is noted as IAM would authorise it, then passed to s3rver.
  const audit: AuditedCall[] = [];
  const front = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://local');
    const [, bucketName, ...key] = url.pathname.split('/');
    if (bucketName && key.join('/') !== '') {
      const action =
        request.method === 'PUT'
          ? 's3:PutObject'
          : request.method === 'DELETE'
            ? 's3:DeleteObject'
            : 's3:GetObject';
      audit.push({
        action,
        resource: `arn:aws:s3:::${bucketName}/${decodeURIComponent(key.join('/'))}`,
        context: {},
        accessKeyId: accessKeyOf(request),
      });
    } else if (bucketName && request.method === 'GET') {
      // A listing (ListObjectsV2): authorised as s3:ListBucket on the bucket, with its prefix.
      audit.push({
        action: 's3:ListBucket',
        resource: `arn:aws:s3:::${bucketName}`,
        context: { 's3:prefix': url.searchParams.get('prefix') ?? '' },
        accessKeyId: accessKeyOf(request),
      });
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', (error) => response.destroy(error));
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => front.listen(options.port ?? 0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(front.address() as AddressInfo).port}`,
    bucket,
    audit,
    readText: async (key) => {
      const object = await store.getObject(bucket, key);
      if (!object?.content) return undefined;
      const chunks: Buffer[] = [];
      for await (const chunk of object.content) chunks.push(Buffer.from(chunk as Buffer));
      return Buffer.concat(chunks).toString('utf8');
    },
    keys: async (prefix) => (await store.listObjects(bucket, { prefix })).objects.map((object) => object.key),
    stop: async () => {
      front.closeAllConnections();
      await new Promise((resolve) => front.close(resolve));
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Key parts longer than this (in bytes) are stored under their digest. */
const LONG_PART = 80;

/** The part of s3rver's store the plane reads from directly. */
interface ObjectStore {
  getObject(bucket: string, key: string): Promise<{ content: AsyncIterable<unknown> | null } | null>;
  listObjects(bucket: string, options: { prefix: string }): Promise<{ objects: { key: string }[] }>;
}

interface KeyedStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}

/**
 * s3rver stores each object as files named after its key, and a key part longer than the file
 * system's 255-byte names made it throw ENAMETOOLONG from a stream nobody listens to, which
 * ended the whole process. Any key S3 accepts (up to 1,024 bytes) must be storable here: parts
 * longer than {@link LONG_PART} bytes are stored under their SHA-256 instead. Reads and writes of
 * the same key meet at the same file; a listing shows such parts as their digest.
 */
function keepKeysStorable(server: S3rver): void {
  const store = (server as unknown as { store: KeyedStore }).store;
  const original = store.getResourcePath.bind(store);
  store.getResourcePath = (bucket, key, resource) =>
    original(
      bucket,
      key
        ?.split('/')
        .map((part) =>
          Buffer.byteLength(part) > LONG_PART ? `~${createHash('sha256').update(part).digest('hex')}` : part,
        )
        .join('/'),
      resource,
    );
}
