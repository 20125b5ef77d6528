import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { codeSha256 } from './zip-writer.js';

export interface StubFunction {
  name: string;
  version: string;
  zip: Buffer;
  handler: string;
  variables?: Record<string, string>;
  layers?: string[];
  packageType?: 'Zip' | 'Image';
  /** Report this CodeSha256 instead of the real one. */
  sha256?: string;
  /** The function's runtime (default: the Node running the tests). */
  runtime?: string;
  /** Report the environment as undecryptable, as Lambda does without kms:Decrypt. */
  environmentError?: { ErrorCode: string; Message: string };
}

/** How code downloads misbehave. */
export type DownloadFault = 'expired' | 'denied' | 'truncate-once' | 'truncate-always' | 'server-error-once';

/**
 * A loopback Lambda endpoint for the runner: GetFunction and GetLayerVersionByArn in the
 * REST-JSON protocol the SDK speaks, and presigned-looking code URLs on the same server.
 */
export class LambdaStub {
  readonly functions = new Map<string, StubFunction>();
  readonly layers = new Map<string, Buffer>();
  readonly calls: string[] = [];
  fault: { getFunction?: 'not-found' | 'denied'; download?: DownloadFault; throttle?: number } = {};
  readonly #downloads = new Map<string, Buffer>();
  readonly #faultsSeen = new Set<string>();
  readonly #server: Server;
  #base = '';

  constructor() {
    this.#server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://stub');
      this.calls.push(`${request.method} ${url.pathname}`);
      const json = (status: number, body: unknown, errorType?: string) => {
        response.writeHead(status, {
          'content-type': 'application/json',
          ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
        });
        response.end(JSON.stringify(body));
      };
      const fn = /^\/2015-03-31\/functions\/([^/]+)$/.exec(url.pathname);
      if (fn?.[1]) {
        const name = decodeURIComponent(fn[1]);
        const version = url.searchParams.get('Qualifier') ?? '$LATEST';
        const found = this.functions.get(`${name}:${version}`);
        if ((this.fault.throttle ?? 0) > 0) {
          this.fault.throttle = (this.fault.throttle ?? 0) - 1;
          json(
            429,
            { Type: 'User', message: 'Rate exceeded', Reason: 'CallerRateLimitExceeded' },
            'TooManyRequestsException',
          );
          return;
        }
        if (this.fault.getFunction === 'denied') {
          json(403, { Message: 'not authorized to perform lambda:GetFunction' }, 'AccessDeniedException');
          return;
        }
        if (!found || this.fault.getFunction === 'not-found') {
          json(
            404,
            { Type: 'User', Message: `Function not found: ${name}:${version}` },
            'ResourceNotFoundException',
          );
          return;
        }
        json(200, {
          Configuration: {
            FunctionName: found.name,
            FunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${found.name}:${found.version}`,
            Version: found.version,
            Runtime: found.runtime ?? `nodejs${process.versions.node.split('.')[0]}.x`,
            Handler: found.handler,
            MemorySize: 512,
            CodeSha256: found.sha256 ?? codeSha256(found.zip),
            CodeSize: found.zip.length,
            PackageType: found.packageType ?? 'Zip',
            Environment: found.environmentError
              ? { Error: found.environmentError }
              : { Variables: found.variables ?? {} },
            ...(found.environmentError ? { KMSKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/env' } : {}),
            Layers: (found.layers ?? []).map((arn) => ({
              Arn: arn,
              CodeSize: this.layers.get(arn)?.length ?? 0,
            })),
          },
          Code:
            found.packageType === 'Image'
              ? { RepositoryType: 'ECR', ImageUri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/fn:1' }
              : { RepositoryType: 'S3', Location: this.#offer(found.zip) },
        });
        return;
      }
      if (url.pathname === '/2018-10-31/layers' && url.searchParams.get('find') === 'LayerVersion') {
        const arn = url.searchParams.get('Arn') ?? '';
        const zip = this.layers.get(arn);
        if (!zip) {
          json(404, { Message: `Layer not found: ${arn}` }, 'ResourceNotFoundException');
          return;
        }
        json(200, {
          LayerVersionArn: arn,
          Content: { Location: this.#offer(zip), CodeSha256: codeSha256(zip), CodeSize: zip.length },
        });
        return;
      }
      const download = /^\/code\/([^/]+)$/.exec(url.pathname);
      const zip = download?.[1] ? this.#downloads.get(download[1]) : undefined;
      if (zip) {
        const fault = this.fault.download;
        const once = (name: string) => {
          if (this.#faultsSeen.has(name)) return false;
          this.#faultsSeen.add(name);
          return true;
        };
        if (fault === 'expired') {
          response.writeHead(403, { 'content-type': 'application/xml' });
          response.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
          return;
        }
        if (fault === 'denied') {
          response.writeHead(403, { 'content-type': 'application/xml' });
          response.end('<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
          return;
        }
        if (fault === 'server-error-once' && once('server-error')) {
          response.writeHead(503).end();
          return;
        }
        if (fault === 'truncate-always' || (fault === 'truncate-once' && once('truncate'))) {
          response.writeHead(200, { 'content-length': String(zip.length) });
          response.write(zip.subarray(0, Math.floor(zip.length / 2)));
          response.destroy();
          return;
        }
        response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length) });
        response.end(zip);
        return;
      }
      json(
        404,
        { Message: `the stub does not serve ${request.method} ${url.pathname}` },
        'ResourceNotFoundException',
      );
    });
  }

  #offer(zip: Buffer): string {
    const token = randomUUID();
    this.#downloads.set(token, zip);
    return `${this.#base}/code/${token}`;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.#base;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  reset(): void {
    this.functions.clear();
    this.layers.clear();
    this.calls.length = 0;
    this.fault = {};
    this.#faultsSeen.clear();
  }
}
