import type { FunctionConfiguration, LambdaClient } from '@aws-sdk/client-lambda';
import { GetFunctionCommand, GetLayerVersionByArnCommand } from '@aws-sdk/client-lambda';
import { ENV, type Envelope } from '@immortal-lambda/protocol';
import { downloadVerified, type Fetch } from './download.js';
import { CodeFetchError } from './errors.js';
import { type ExtractResult, extractZip } from './zip/extract.js';

/**
 * Lambda's limit on code and layers together, unzipped: 250 MB.
 *
 * @example
 * ```ts
 * import { extractZip, LAMBDA_UNZIPPED_LIMIT } from '@immortal-lambda/runner';
 * await extractZip(zip, { root: '/var/task', maxBytes: LAMBDA_UNZIPPED_LIMIT, label: 'the code' });
 * ```
 */
export const LAMBDA_UNZIPPED_LIMIT = 262_144_000;
/** The largest zip the runner downloads: Lambda's limit for code uploaded through S3. */
export const MAX_ZIP_BYTES = LAMBDA_UNZIPPED_LIMIT;

export interface FetchedCode {
  configuration: FunctionConfiguration;
  code: ExtractResult;
  layers: { arn: string; result: ExtractResult }[];
}

export interface FetchCodeOptions {
  envelope: Envelope;
  lambda: LambdaClient;
  fetch: Fetch;
  taskRoot: string;
  layersRoot: string;
  sleep?: (ms: number) => Promise<void>;
  /** Called at each step, for the runner's progress log. */
  progress?: (message: string, attributes: Record<string, unknown>) => void;
}

const awsName = (error: unknown) => (error as { name?: string }).name ?? 'Error';

/** "after N attempts" from the SDK's metadata, when it says. */
export function attemptsNote(error: unknown): string {
  const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts;
  return attempts ? ` after ${attempts} attempt${attempts === 1 ? '' : 's'}` : '';
}

/** Did the call fail because nothing answered in time (a timed-out request or connection)? */
export function isNoAnswer(error: unknown): boolean {
  const { name, code } = error as { name?: string; code?: string };
  return (
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    code === 'ETIMEDOUT' ||
    code === 'ECONNRESET' ||
    /timed? ?out|socket hang up/i.test((error as Error).message ?? '')
  );
}

async function getFunction(options: FetchCodeOptions) {
  const { name, version } = options.envelope.function;
  try {
    return await options.lambda.send(new GetFunctionCommand({ FunctionName: name, Qualifier: version }));
  } catch (error) {
    const kind = awsName(error);
    if (kind === 'ResourceNotFoundException') {
      throw new CodeFetchError(
        `function ${name} version ${version} no longer exists (GetFunction: ResourceNotFoundException); the invocation cannot run`,
        { cause: error },
      );
    }
    if (kind === 'AccessDeniedException' || kind === 'AccessDenied') {
      throw new CodeFetchError(
        `the task role may not call lambda:GetFunction on ${name}:${version}; grant it on the function and its versions`,
        { cause: error },
      );
    }
    if (isNoAnswer(error)) {
      throw new CodeFetchError(
        `the Lambda API did not answer GetFunction for ${name}:${version}${attemptsNote(error)} (${kind}); check that the task can reach the Lambda endpoint (a NAT gateway or a lambda VPC endpoint in private subnets), or raise ${ENV.awsTimeoutMs}`,
        { cause: error },
      );
    }
    throw new CodeFetchError(
      `GetFunction for ${name}:${version} failed${attemptsNote(error)}: ${kind}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * Fetches the exact function version named by the envelope: GetFunction, the code zip through
 * its presigned URL (verified against CodeSha256) into the task root, then each layer in order
 * into the layers root, all within Lambda's unzipped limit.
 *
 * @example
 * ```ts
 * import { fetchCode } from '@immortal-lambda/runner';
 * const { configuration } = await fetchCode({ envelope, lambda: new LambdaClient({}), fetch, taskRoot: '/var/task', layersRoot: '/opt' });
 * ```
 */
export async function fetchCode(options: FetchCodeOptions): Promise<FetchedCode> {
  const { name, version } = options.envelope.function;
  const progress = options.progress ?? (() => {});
  const answer = await getFunction(options);
  const configuration = answer.Configuration ?? {};
  if (configuration.PackageType === 'Image') {
    throw new CodeFetchError(
      `function ${name}:${version} is a container image (${answer.Code?.ImageUri ?? 'no ImageUri'}); this runner runs zip functions only: run that image as the task instead`,
    );
  }
  const location = answer.Code?.Location;
  const sha256 = configuration.CodeSha256;
  if (!location || !sha256) {
    throw new CodeFetchError(`GetFunction for ${name}:${version} returned no code location or CodeSha256`);
  }
  progress('Fetching the function code', {
    codeSize: configuration.CodeSize,
    layers: configuration.Layers?.length ?? 0,
  });
  let budget = LAMBDA_UNZIPPED_LIMIT;
  // Download, verify and extract one archive; code and layers share the unzipped budget.
  const install = async (
    label: string,
    url: string,
    sha: string,
    root: string,
    refreshUrl: () => Promise<string | undefined>,
  ) => {
    const zip = await downloadVerified({
      url,
      label,
      sha256: sha,
      maxBytes: MAX_ZIP_BYTES,
      fetch: options.fetch,
      refreshUrl,
      ...(options.sleep ? { sleep: options.sleep } : {}),
    });
    const result = await extractZip(zip, { root, maxBytes: budget, label });
    budget -= result.bytes;
    return result;
  };
  const code = await install(
    `the code of ${name}:${version}`,
    location,
    sha256,
    options.taskRoot,
    async () => (await getFunction(options)).Code?.Location,
  );
  progress('Extracted the function code', { root: options.taskRoot, files: code.files, bytes: code.bytes });

  const layers: FetchedCode['layers'] = [];
  for (const layer of configuration.Layers ?? []) {
    const arn = layer.Arn;
    if (!arn) continue;
    const fetchLayer = async () => {
      try {
        return await options.lambda.send(new GetLayerVersionByArnCommand({ Arn: arn }));
      } catch (error) {
        throw new CodeFetchError(
          isNoAnswer(error)
            ? `the Lambda API did not answer GetLayerVersionByArn for ${arn}${attemptsNote(error)} (${awsName(error)}); check that the task can reach the Lambda endpoint`
            : `GetLayerVersionByArn for ${arn} failed${attemptsNote(error)} (${awsName(error)}): the task role needs lambda:GetLayerVersion on it`,
          { cause: error },
        );
      }
    };
    const described = await fetchLayer();
    const content = described.Content;
    if (!content?.Location || !content.CodeSha256)
      throw new CodeFetchError(`layer ${arn} has no content location`);
    const result = await install(
      `layer ${arn}`,
      content.Location,
      content.CodeSha256,
      options.layersRoot,
      async () => (await fetchLayer()).Content?.Location,
    );
    layers.push({ arn, result });
    progress('Extracted a layer', {
      arn,
      root: options.layersRoot,
      files: result.files,
      bytes: result.bytes,
    });
  }
  return { configuration, code, layers };
}
