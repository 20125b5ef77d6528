import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

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
    port: options.port ?? 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  keepKeysStorable(server);
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    stop: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Key parts longer than this (in bytes) are stored under their digest. */
const LONG_PART = 80;

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
