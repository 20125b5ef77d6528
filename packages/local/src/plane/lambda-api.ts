import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ApiError } from '../errors.js';
import { ACCOUNT, type FunctionRegistry, type LocalFunction } from '../registry.js';
import { byteRange } from './byte-range.js';
import type { PlaneContext } from './model.js';

/**
 * The Lambda API of the local plane: GetFunction (the real CodeSha256 and a code URL that expires
 * like a presigned one) and GetLayerVersionByArn, and the code downloads those URLs serve.
 */
export class LambdaApi {
  readonly #ctx: PlaneContext;
  readonly #functions: FunctionRegistry;
  readonly #codeUrls = new Map<string, { zip: Buffer; issuedAt: number; served: number }>();
  readonly #codeUrlTtlMs: number;
  readonly #baseUrl: () => string;

  constructor(ctx: PlaneContext, functions: FunctionRegistry, codeUrlTtlMs: number, baseUrl: () => string) {
    this.#ctx = ctx;
    this.#functions = functions;
    this.#codeUrlTtlMs = codeUrlTtlMs;
    this.#baseUrl = baseUrl;
  }

  /**
   * Answers Lambda's throttling first, as its account rates do under a burst: the rate of the call
   * (with the limits on), then the faults.
   */
  #throttle(rate: 'getFunction' | 'lambdaControl'): void {
    if (!this.#ctx.limit(rate))
      throw new ApiError('TooManyRequestsException', 'Rate exceeded', 429, {
        Reason: 'CallerRateLimitExceeded',
      });
    const faults = this.#ctx.faults();
    if ((faults.lambdaThrottleNext ?? 0) > 0) {
      faults.lambdaThrottleNext = (faults.lambdaThrottleNext ?? 0) - 1;
      throw new ApiError('TooManyRequestsException', 'Rate exceeded', 429);
    }
    const share = faults.lambdaThrottle ?? 0;
    if (share > 0 && this.#ctx.random() < share) {
      throw new ApiError('TooManyRequestsException', 'Rate exceeded', 429);
    }
  }

  #offerCode(zip: Buffer): string {
    const token = randomBytes(16).toString('hex');
    this.#codeUrls.set(token, { zip, issuedAt: this.#ctx.now(), served: 0 });
    const ttl = Math.round(this.#codeUrlTtlMs / 1000);
    return `${this.#baseUrl()}/code/${token}?X-Amz-Expires=${ttl}`;
  }

  /** GetFunction, recorded as IAM authorises it (on the function, qualified when asked so). */
  getFunction(name: string, url: URL, accessKeyId: string | undefined) {
    const fn = this.#find('lambda:GetFunction', name, url, accessKeyId);
    const image = fn.packageType === 'Image';
    const imageUri = `${ACCOUNT}.dkr.ecr.${this.#ctx.region}.amazonaws.com/${fn.name}:${fn.version}`;
    return {
      Configuration: this.#configurationOf(fn),
      Code: image
        ? {
            RepositoryType: 'ECR',
            ImageUri: imageUri,
            ResolvedImageUri: `${imageUri.split(':').slice(0, -1).join(':')}@sha256:${fn.sha256}`,
          }
        : { RepositoryType: 'S3', Location: this.#offerCode(fn.zip) },
    };
  }

  /** GetFunctionConfiguration: GetFunction's `Configuration`, under its own permission. */
  getConfiguration(name: string, url: URL, accessKeyId: string | undefined) {
    return this.#configurationOf(this.#find('lambda:GetFunctionConfiguration', name, url, accessKeyId));
  }

  /** The function (version) a read names, after throttling and IAM have had their say. */
  #find(action: string, name: string, url: URL, accessKeyId: string | undefined): LocalFunction {
    this.#throttle(action === 'lambda:GetFunction' ? 'getFunction' : 'lambdaControl');
    const qualifier = url.searchParams.get('Qualifier') ?? undefined;
    const arn = this.#functionArn(name);
    this.#ctx.record(action, qualifier ? `${arn}:${qualifier}` : arn, {}, accessKeyId);
    if (this.#ctx.faults().lambdaDenied) {
      throw new ApiError(
        'AccessDeniedException',
        `User is not authorized to perform: ${action} on resource: ${arn}`,
        403,
      );
    }
    const fn = this.#functions.findFunction(name, qualifier);
    if (!fn) {
      throw new ApiError(
        'ResourceNotFoundException',
        `Function not found: ${arn}${qualifier ? `:${qualifier}` : ''}`,
        404,
      );
    }
    return fn;
  }

  /** A version's configuration as Lambda answers it. */
  #configurationOf(fn: LocalFunction) {
    const image = fn.packageType === 'Image';
    return {
      FunctionName: fn.name,
      FunctionArn: `${fn.arn}:${fn.version}`,
      // An image function has neither: its runtime is the image's, its handler the image's command.
      ...(image ? {} : { Runtime: fn.runtime, Handler: fn.handler }),
      CodeSize: fn.zip.length,
      CodeSha256: fn.sha256,
      Timeout: fn.timeout,
      MemorySize: fn.memorySize,
      Version: fn.version,
      PackageType: fn.packageType,
      Architectures: [fn.architecture],
      Role: fn.role,
      Environment: fn.environmentError ? { Error: fn.environmentError } : { Variables: fn.environment },
      ...(fn.environmentError
        ? { KMSKeyArn: `arn:aws:kms:${this.#ctx.region}:${ACCOUNT}:key/environment` }
        : {}),
      // Unset overrides are left out of the answer (JSON drops undefined), as Lambda leaves them.
      ...(image && fn.imageConfig
        ? {
            ImageConfigResponse: {
              ImageConfig: {
                Command: fn.imageConfig.command,
                EntryPoint: fn.imageConfig.entryPoint,
                WorkingDirectory: fn.imageConfig.workingDirectory,
              },
            },
          }
        : {}),
      Layers: fn.layers.map((arn) => ({
        Arn: arn,
        CodeSize: this.#functions.findLayer(arn)?.zip.length ?? 0,
      })),
    };
  }

  /** The function's ARN as IAM names it, from a name or an ARN. */
  #functionArn(name: string): string {
    return name.startsWith('arn:') ? name : `arn:aws:lambda:${this.#ctx.region}:${ACCOUNT}:function:${name}`;
  }

  /** GetFunctionEventInvokeConfig: the destinations registered with the function. */
  eventInvokeConfig(name: string, url: URL, accessKeyId: string | undefined) {
    const qualifier = url.searchParams.get('Qualifier') ?? undefined;
    const arn = this.#functionArn(name);
    this.#ctx.record(
      'lambda:GetFunctionEventInvokeConfig',
      qualifier ? `${arn}:${qualifier}` : arn,
      {},
      accessKeyId,
    );
    const fn = this.#functions.findFunction(name, qualifier);
    if (!fn?.destinations) {
      throw new ApiError(
        'ResourceNotFoundException',
        `The function ${arn} doesn't have an EventInvokeConfig`,
        404,
      );
    }
    const destination = (value: string | undefined) => (value ? { Destination: value } : undefined);
    return {
      FunctionArn: qualifier ? `${arn}:${qualifier}` : arn,
      DestinationConfig: {
        OnSuccess: destination(fn.destinations.onSuccess),
        OnFailure: destination(fn.destinations.onFailure),
      },
    };
  }

  /** Invoke: only asynchronous invocations (`Event`) are taken in, and recorded by the plane. */
  invoke(
    name: string,
    headers: Record<string, string | string[] | undefined>,
    accessKeyId: string | undefined,
  ) {
    this.#ctx.record('lambda:InvokeFunction', this.#functionArn(name), {}, accessKeyId);
    if (headers['x-amz-invocation-type'] !== 'Event') {
      throw new ApiError(
        'InvalidRequestContentException',
        'the local control plane takes in asynchronous invocations (InvocationType Event) only',
        400,
      );
    }
  }

  /** GetLayerVersionByArn, recorded as IAM authorises it (lambda:GetLayerVersion on the layer version). */
  getLayer(arn: string, accessKeyId: string | undefined) {
    this.#throttle('lambdaControl');
    this.#ctx.record('lambda:GetLayerVersion', arn, {}, accessKeyId);
    const layer = this.#functions.findLayer(arn);
    if (!layer) throw new ApiError('ResourceNotFoundException', `Layer version ${arn} does not exist`, 404);
    return {
      LayerVersionArn: arn,
      Content: { Location: this.#offerCode(layer.zip), CodeSha256: layer.sha256, CodeSize: layer.zip.length },
    };
  }

  /**
   * A presigned code URL's GET, as S3 answers it: the zip, or the one byte range asked for (206;
   * 416 past its end); refused (403) once expired. The download faults apply to whole GETs.
   */
  serveCode(token: string, rangeHeader: string | undefined, response: ServerResponse): void {
    const offered = this.#codeUrls.get(token);
    const fault = this.#ctx.faults().download;
    const expired =
      offered && (fault === 'expired' || this.#ctx.now() - offered.issuedAt > this.#codeUrlTtlMs);
    if (!offered || expired || fault === 'denied') {
      response.writeHead(403, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${
          expired ? 'Request has expired' : 'Access Denied'
        }</Message></Error>`,
      );
      return;
    }
    const range = byteRange(rangeHeader, offered.zip.length);
    if (range === 'unsatisfiable') {
      response.writeHead(416, { 'content-type': 'application/xml' });
      response.end(
        '<Error><Code>InvalidRange</Code><Message>The requested range is not satisfiable</Message></Error>',
      );
      return;
    }
    if (range !== undefined) {
      response.writeHead(206, {
        'content-type': 'application/zip',
        'content-length': String(range.end - range.start + 1),
        'content-range': `bytes ${range.start}-${range.end}/${offered.zip.length}`,
      });
      response.end(offered.zip.subarray(range.start, range.end + 1));
      return;
    }
    offered.served += 1;
    const first = offered.served === 1;
    if (fault === 'server-error-once' && first) {
      response.writeHead(500, { 'content-type': 'application/xml' });
      response.end('<Error><Code>InternalError</Code></Error>');
      return;
    }
    response.writeHead(200, {
      'content-type': 'application/zip',
      'content-length': String(offered.zip.length),
    });
    if (fault === 'truncate-always' || (fault === 'truncate-once' && first)) {
      // The connection breaks off after half the body, as a flaky network does.
      response.write(offered.zip.subarray(0, Math.floor(offered.zip.length / 2)), () => response.destroy());
      return;
    }
    response.end(offered.zip);
  }
}
