import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import {
  Agent,
  request as httpRequest,
  type IncomingMessage,
  type RequestListener,
  type ServerResponse,
} from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { type AuditedCall, accessKeyOf, deniedMessage } from './audit.js';
import { Listeners } from './plane/listeners.js';

/** Connections from the front to s3rver at most. */
const UPSTREAM_SOCKETS = 64;

/**
 * Passes a call the front let through to s3rver, and its answer back; a missing key read by a
 * caller that may not list the bucket answers 403, as S3 does.
 */
function passToS3rver(
  request: IncomingMessage,
  response: ServerResponse,
  to: { port: number; agent: Agent; call: AuditedCall | undefined; authorize: S3Options['authorize'] },
): void {
  const { call } = to;
  // With authorize, the front decides who may do what: s3rver, which knows one key only, is
  // asked without the caller's signature.
  const headers = to.authorize ? withoutSignature(request.headers) : request.headers;
  const { method, url: path } = request;
  const upstream = httpRequest(
    { host: '127.0.0.1', port: to.port, method, path, headers, agent: to.agent },
    (answer) => {
      if (answer.statusCode === 404 && call?.action === 's3:GetObject' && !mayList(call, to.authorize)) {
        // S3 answers a missing key with 403 to a caller that may not s3:ListBucket the bucket.
        answer.resume();
        accessDenied(response, call);
        return;
      }
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    },
  );
  upstream.on('error', (error) => response.destroy(error));
  request.pipe(upstream);
}

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
export async function startS3(options: S3Options = {}): Promise<LocalS3> {
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
  // A front that notes each call as IAM would authorise it, refuses what `authorize` denies as
  // S3 does, then passes the rest to s3rver.
  const audit: AuditedCall[] = [];
  // S3's PUT is atomic: a GET sees the old object or the new one, never half of it. s3rver writes
  // files in place, so a read of a key waits for the writes to it in flight.
  const writing = new Map<string, Promise<void>>();
  // s3rver accepts 511 waiting connections: a burst's calls wait for one of these instead. An
  // idle one is closed after 4 s, before s3rver closes it (5 s) while a call is being sent on it.
  const upstreamAgent = new Agent({ keepAlive: true, maxSockets: UPSTREAM_SOCKETS, timeout: 4_000 });
  const serveFront: RequestListener = async (request, response) => {
    const call = s3Call(request);
    if (call) audit.push(call);
    if (call && options.authorize && !options.authorize(call)) {
      accessDenied(response, call);
      request.resume();
      return;
    }
    if (call?.action === 's3:GetLifecycleConfiguration') return answerLifecycle(response, options.lifecycle);
    const resource = call?.resource;
    if (resource && call?.action === 's3:GetObject') await writing.get(resource);
    if (resource && call?.action === 's3:PutObject') {
      const done = new Promise<void>((resolve) => response.on('close', () => resolve()));
      const before = writing.get(resource) ?? Promise.resolve();
      const chained = before.then(() => done);
      writing.set(resource, chained);
      void chained.then(() => {
        if (writing.get(resource) === chained) writing.delete(resource);
      });
      // A conditional create (`If-None-Match: *`) waits for the writes before it, then is refused
      // as S3 refuses it when the key exists: one writer of a key wins, whoever comes second sees 412.
      if (request.headers['if-none-match'] === '*') {
        await before;
        if (await store.existsObject(bucket, resource.slice(`arn:aws:s3:::${bucket}/`.length))) {
          request.resume();
          response.writeHead(412, { 'content-type': 'application/xml' });
          response.end(
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>',
          );
          return;
        }
      }
    }
    passToS3rver(request, response, { port, agent: upstreamAgent, call, authorize: options.authorize });
  };
  const front = await Listeners.open(serveFront, options.port ?? 0, '127.0.0.1');
  return {
    endpoint: `http://127.0.0.1:${front.port}`,
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
      upstreamAgent.destroy();
      await front.close();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * Options of {@link startS3}.
 *
 * @example
 * ```ts
 * import type { S3Options } from '@immortal-lambda/local';
 * const options: S3Options = { bucket: 'envelopes', authorize: (call) => call.action !== 's3:DeleteObject' };
 * ```
 */
export interface S3Options {
  bucket?: string;
  port?: number;
  /**
   * Decides each call as IAM would for the credentials that signed it: a call it denies is
   * answered 403 `AccessDenied`, as S3 answers it. A GetObject of a missing key is answered 403
   * too unless the caller may `s3:ListBucket` the bucket, asked without an `s3:prefix` (S3's
   * documentation says only "permission on the bucket"; the strict reading is taken, so code
   * that must tell a missing key from a denied one lists the key instead). Default: all allowed.
   */
  authorize?: (call: AuditedCall) => boolean;
  /**
   * The bucket's lifecycle rules, as its deployment set them: GetBucketLifecycleConfiguration
   * answers them (none: `NoSuchLifecycleConfiguration`, as S3 answers a bucket without rules).
   */
  lifecycle?: LifecycleRule[];
}

/**
 * One expiration rule of a bucket's lifecycle configuration.
 *
 * @example
 * ```ts
 * import type { LifecycleRule } from '@immortal-lambda/local';
 * const rule: LifecycleRule = { id: 'envelopes', prefix: 'immortal-lambda/envelopes/', expirationDays: 7 };
 * ```
 */
export interface LifecycleRule {
  id: string;
  prefix: string;
  expirationDays: number;
  /** Default `Enabled`. */
  status?: 'Enabled' | 'Disabled';
}

/** GetBucketLifecycleConfiguration's answer: the rules in S3's XML, or S3's 404 for a bucket without any. */
function answerLifecycle(response: ServerResponse, rules: LifecycleRule[] | undefined): void {
  response.setHeader('content-type', 'application/xml');
  if (!rules || rules.length === 0) {
    response.writeHead(404);
    response.end(
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchLifecycleConfiguration</Code><Message>The lifecycle configuration does not exist</Message></Error>',
    );
    return;
  }
  const rule = (each: LifecycleRule) =>
    `<Rule><ID>${each.id}</ID><Filter><Prefix>${each.prefix}</Prefix></Filter><Status>${each.status ?? 'Enabled'}</Status><Expiration><Days>${each.expirationDays}</Days></Expiration></Rule>`;
  response.writeHead(200);
  response.end(
    `<?xml version="1.0" encoding="UTF-8"?><LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rules.map(rule).join('')}</LifecycleConfiguration>`,
  );
}

/** The call as IAM authorises it: an object action on the object, or a listing on the bucket with its prefix. */
function s3Call(request: IncomingMessage): AuditedCall | undefined {
  const url = new URL(request.url ?? '/', 'http://local');
  const [, bucketName, ...key] = url.pathname.split('/');
  const accessKeyId = accessKeyOf(request);
  if (bucketName && key.join('/') !== '') {
    const action =
      request.method === 'PUT'
        ? 's3:PutObject'
        : request.method === 'DELETE'
          ? 's3:DeleteObject'
          : 's3:GetObject';
    return {
      action,
      resource: `arn:aws:s3:::${bucketName}/${decodeURIComponent(key.join('/'))}`,
      context: {},
      accessKeyId,
    };
  }
  if (bucketName && request.method === 'GET' && url.searchParams.has('lifecycle')) {
    return {
      action: 's3:GetLifecycleConfiguration',
      resource: `arn:aws:s3:::${bucketName}`,
      context: {},
      accessKeyId,
    };
  }
  if (bucketName && request.method === 'GET') {
    return {
      action: 's3:ListBucket',
      resource: `arn:aws:s3:::${bucketName}`,
      context: { 's3:prefix': url.searchParams.get('prefix') ?? '' },
      accessKeyId,
    };
  }
  return undefined;
}

/** Whether the caller of an object call may list its bucket (no prefix asked: see {@link S3Options.authorize}). */
function mayList(call: AuditedCall, authorize: S3Options['authorize']): boolean {
  if (!authorize) return true;
  const bucketArn = call.resource.slice(0, call.resource.indexOf('/'));
  return authorize({
    action: 's3:ListBucket',
    resource: bucketArn,
    context: {},
    accessKeyId: call.accessKeyId,
  });
}

function withoutSignature(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const { authorization: _signature, ...rest } = headers;
  return rest;
}

/** S3's 403 answer, in its XML error shape. */
function accessDenied(response: ServerResponse, call: AuditedCall): void {
  response.writeHead(403, { 'content-type': 'application/xml' });
  response.end(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${deniedMessage(call)}</Message></Error>`,
  );
}

/** Key parts longer than this (in bytes) are stored under their digest. */
const LONG_PART = 80;

/** The part of s3rver's store the plane reads from directly. */
interface ObjectStore {
  existsObject(bucket: string, key: string): Promise<boolean>;
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
