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
