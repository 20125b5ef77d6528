import { stat } from 'node:fs/promises';
import type { FunctionConfiguration, GetFunctionCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { GetFunctionCommand, GetLayerVersionByArnCommand } from '@aws-sdk/client-lambda';
import { ENV, type Envelope, isThrottled, runtimeNodeMajor } from '@immortal-lambda/protocol';
import { type Fetch, wait } from './download.js';
import { BadInputError, CodeFetchError } from './errors.js';
import { installArchive, LAMBDA_UNZIPPED_LIMIT } from './install.js';
import type { ExtractResult } from './zip/extract.js';

export interface FetchedCode {
  /** The function's configuration; for an image function `Handler` is the image's command. */
  configuration: FunctionConfiguration;
  /** Where the handler's code is: the extracted zip, or the image's own folder. */
  taskRoot: string;
  /** What was extracted; undefined for an image function, whose code is already in place. */
  code: ExtractResult | undefined;
  layers: { arn: string; result: ExtractResult }[];
  /** The image an image function runs from (`ResolvedImageUri`, else `ImageUri`). */
  image: string | undefined;
}

export interface FetchCodeOptions {
  envelope: Envelope;
  lambda: LambdaClient;
  fetch: Fetch;
  taskRoot: string;
  /** The task root was set explicitly: an image function's code is looked for there too. */
  taskRootGiven?: boolean;
  /** An image function's `LAMBDA_TASK_ROOT`, as its image sets it: where Lambda looks for its handler. */
  imageTaskRoot?: string | undefined;
  layersRoot: string;
  /** The folder the process started in: an image's working directory (default `process.cwd()`). */
  cwd?: string;
  /** The architecture of this process, as Node names it (default `process.arch`). */
  arch?: string;
  sleep?: (ms: number) => Promise<void>;
  /** Called at each step, for the runner's progress log. */
  progress?: (message: string, attributes: Record<string, unknown>) => void;
  /** How long throttled Lambda API calls are retried (default 5 minutes). */
  throttleBudgetMs?: number;
  /** The Node major the handler will run on; a function of another runtime is refused. */
  nodeMajor?: number;
  /** Run a function of another runtime anyway. */
  allowRuntimeMismatch?: boolean;
  now?: () => number;
  random?: () => number;
  /**
   * A container image function's handler as the task definition names it (its image's CMD), used
   * when neither the envelope nor GetFunction's ImageConfig names one.
   */
  imageHandler?: string | undefined;
}

/**
 * Calls `call` until it is not throttled, waiting a full-jitter backoff (1 s doubling to 20 s)
 * between attempts, for at most `throttleBudgetMs`; each wait is reported through `progress`.
 */
async function unthrottled<T>(options: FetchCodeOptions, what: string, call: () => Promise<T>): Promise<T> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? wait;
  const budget = options.throttleBudgetMs ?? 300_000;
  const started = now();
  for (let retry = 0; ; retry++) {
    try {
      return await call();
    } catch (error) {
      const waited = now() - started;
      if (!isThrottled(error)) throw error;
      if (waited >= budget) {
        throw new CodeFetchError(
          `${what} was still throttled by the Lambda API after ${Math.round(waited / 1000)} s and ${retry + 1} attempts; the account's rate (GetFunction 100/s, other calls 15/s) cannot be raised: spread the burst, or raise ${ENV.throttleBudgetMs}`,
          { cause: error },
        );
      }
      const delay = Math.min(Math.floor(random() * Math.min(20_000, 1_000 * 2 ** retry)), budget - waited);
      options.progress?.('Throttled by the Lambda API; waiting before the next attempt', {
        call: what,
        retry: retry + 1,
        waitMs: delay,
      });
      await sleep(Math.max(delay, 0));
    }
  }
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
    return await unthrottled(options, `GetFunction for ${name}:${version}`, () =>
      options.lambda.send(new GetFunctionCommand({ FunctionName: name, Qualifier: version })),
    );
  } catch (error) {
    if (error instanceof CodeFetchError) throw error;
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
 * into the layers root, all within Lambda's unzipped limit. A container image function's code is
 * the image this task runs: nothing is downloaded, its folder is checked and returned.
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
    readableEnvironment(configuration, name, version);
    return imageCode(options, answer);
  }
  sameRuntime(options, configuration);
  readableEnvironment(configuration, name, version);
  const location = answer.Code?.Location;
  const sha256 = configuration.CodeSha256;
  if (!location || !sha256) {
    throw new CodeFetchError(`GetFunction for ${name}:${version} returned no code location or CodeSha256`);
  }
  progress('Fetching the function code', {
    codeSize: configuration.CodeSize,
    layers: configuration.Layers?.length ?? 0,
  });
  const installer = new Installer(options);
  const code = await installer.install(
    `the code of ${name}:${version}`,
    { url: location, sha256, size: configuration.CodeSize },
    options.taskRoot,
    async () => (await getFunction(options)).Code?.Location,
  );
  progress('Extracted the function code', { root: options.taskRoot, files: code.files, bytes: code.bytes });
  const layers = await installLayers(options, configuration, installer, progress);
  return { configuration, taskRoot: options.taskRoot, code, layers, image: undefined };
}

/** The function runs on the runner's Node major, unless a mismatch was allowed. */
function sameRuntime(options: FetchCodeOptions, configuration: FunctionConfiguration): void {
  const { name, version } = options.envelope.function;
  const runtimeMajor = runtimeNodeMajor(configuration.Runtime);
  if (
    options.nodeMajor === undefined ||
    runtimeMajor === undefined ||
    runtimeMajor === options.nodeMajor ||
    options.allowRuntimeMismatch
  ) {
    return;
  }
  throw new BadInputError(
    `${name}:${version} runs on ${configuration.Runtime} and this runner on Node ${options.nodeMajor}: use the runner image built for ${configuration.Runtime} (the construct picks it from the function's runtime), or set ${ENV.allowRuntimeMismatch}=true to run it anyway`,
  );
}

/** Downloads, verifies and extracts archives; the code and its layers share the unzipped budget. */
class Installer {
  #budget = LAMBDA_UNZIPPED_LIMIT;
  readonly #options: FetchCodeOptions;

  constructor(options: FetchCodeOptions) {
    this.#options = options;
  }

  async install(
    label: string,
    archive: { url: string; sha256: string; size: number | undefined },
    root: string,
    refreshUrl: () => Promise<string | undefined>,
  ): Promise<ExtractResult> {
    const { url, sha256, size } = archive;
    const { fetch, sleep, progress } = this.#options;
    const result = await installArchive({
      url,
      label,
      sha256,
      root,
      size,
      maxBytes: this.#budget,
      fetch,
      refreshUrl,
      ...(sleep ? { sleep } : {}),
      ...(progress ? { progress } : {}),
    });
    this.#budget -= result.bytes;
    return result;
  }
}

/** The function's layers, in order, into the layers root. */
async function installLayers(
  options: FetchCodeOptions,
  configuration: FunctionConfiguration,
  installer: Installer,
  progress: NonNullable<FetchCodeOptions['progress']>,
): Promise<FetchedCode['layers']> {
  const layers: FetchedCode['layers'] = [];
  for (const layer of configuration.Layers ?? []) {
    const arn = layer.Arn;
    if (!arn) continue;
    const described = await describeLayer(options, arn);
    const content = described.Content;
    if (!content?.Location || !content.CodeSha256)
      throw new CodeFetchError(`layer ${arn} has no content location`);
    const result = await installer.install(
      `layer ${arn}`,
      { url: content.Location, sha256: content.CodeSha256, size: content.CodeSize },
      options.layersRoot,
      async () => (await describeLayer(options, arn)).Content?.Location,
    );
    layers.push({ arn, result });
    progress('Extracted a layer', {
      arn,
      root: options.layersRoot,
      files: result.files,
      bytes: result.bytes,
    });
  }
  return layers;
}

/** GetLayerVersionByArn, retried while throttled; what else fails says what the task needs. */
async function describeLayer(options: FetchCodeOptions, arn: string) {
  try {
    return await unthrottled(options, `GetLayerVersionByArn for ${arn}`, () =>
      options.lambda.send(new GetLayerVersionByArnCommand({ Arn: arn })),
    );
  } catch (error) {
    if (error instanceof CodeFetchError) throw error;
    throw new CodeFetchError(
      isNoAnswer(error)
        ? `the Lambda API did not answer GetLayerVersionByArn for ${arn}${attemptsNote(error)} (${awsName(error)}); check that the task can reach the Lambda endpoint`
        : `GetLayerVersionByArn for ${arn} failed${attemptsNote(error)} (${awsName(error)}): the task role needs lambda:GetLayerVersion on it`,
      { cause: error },
    );
  }
}

/** The handler is never started without its variables: Lambda reports those it cannot decrypt. */
function readableEnvironment(configuration: FunctionConfiguration, name: string, version: string): void {
  const environmentError = configuration.Environment?.Error;
  if (environmentError) {
    const key = configuration.KMSKeyArn ?? "the function's environment key";
    throw new CodeFetchError(
      `the environment variables of ${name}:${version} cannot be read (${environmentError.ErrorCode ?? 'Error'}: ${environmentError.Message ?? 'no message'}): the task role needs kms:Decrypt on ${key}; the handler is not started without its variables`,
    );
  }
}

/** Lambda's architecture names for Node's. */
const LAMBDA_ARCHITECTURE: Record<string, string> = { x64: 'x86_64', arm64: 'arm64' };

/**
 * An image function: its code is the image this process runs in, so nothing is downloaded. The
 * code is in the task root given, else the image's `LAMBDA_TASK_ROOT`, else its working directory
 * (`ImageConfig`'s override, else the folder the container started in); the handler is the image's command, as Lambda sets
 * `_HANDLER` from it. Images have no layers.
 */
async function imageCode(options: FetchCodeOptions, answer: GetFunctionCommandOutput): Promise<FetchedCode> {
  const { name, version } = options.envelope.function;
  const configuration = answer.Configuration ?? {};
  const image = answer.Code?.ResolvedImageUri ?? answer.Code?.ImageUri;
  const wanted = configuration.Architectures?.[0] ?? 'x86_64';
  const arch = options.arch ?? process.arch;
  const running = LAMBDA_ARCHITECTURE[arch] ?? arch;
  if (running !== wanted) {
    throw new BadInputError(
      `${name}:${version} is an ${wanted} image and this task runs on ${running}: set the task definition's cpuArchitecture to ${wanted === 'arm64' ? 'ARM64' : 'X86_64'} (the construct takes it from the function's architecture)`,
    );
  }
  const imageConfig = configuration.ImageConfigResponse?.ImageConfig;
  // As Lambda does: its Node.js images resolve the handler in LAMBDA_TASK_ROOT (their ENV, /var/task),
  // whatever the working directory; an image without it, in its working directory.
  const taskRoot = options.taskRootGiven
    ? options.taskRoot
    : options.imageTaskRoot?.trim() || imageConfig?.WorkingDirectory || options.cwd || process.cwd();
  const folder = await stat(taskRoot).catch(() => undefined);
  if (!folder?.isDirectory()) {
    throw new BadInputError(
      `${name}:${version} is a container image whose code should be in ${taskRoot}, and this task has no such folder: run the task from the function's own image (${image ?? 'its ImageUri'}) with the runner beside it, as the construct's task definition for image functions does`,
    );
  }
  // An image's CMD is in GetFunction only when the function overrides it; else the task definition says it.
  const handler = configuration.Handler ?? imageConfig?.Command?.[0] ?? options.imageHandler;
  options.progress?.("The code is the function's image: nothing to download", {
    image,
    taskRoot,
    ...(imageConfig?.EntryPoint ? { entryPointReplaced: imageConfig.EntryPoint } : {}),
  });
  return {
    configuration: handler === undefined ? configuration : { ...configuration, Handler: handler },
    taskRoot,
    code: undefined,
    layers: [],
    image,
  };
}
