import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RegistrationError } from './errors.js';
import { codeSha256, zipFolder } from './zip.js';

export const ACCOUNT = '123456789012';

/**
 * A function version served by GetFunction.
 *
 * @example
 * ```ts
 * import type { LocalFunction } from '@immortal-lambda/local';
 * const describe = (fn: LocalFunction) => `${fn.name}:${fn.version} ${fn.sha256}`;
 * ```
 */
export interface LocalFunction {
  name: string;
  version: string;
  arn: string;
  handler: string;
  runtime: string;
  memorySize: number;
  timeout: number;
  environment: Record<string, string>;
  layers: string[];
  zip: Buffer;
  /** The CodeSha256 GetFunction reports (the zip's own unless registered otherwise). */
  sha256: string;
  /** The folder the code was zipped from; undefined when registered as a zip. */
  folder: string | undefined;
  packageType: 'Zip' | 'Image';
  /** An image function's local image (what its runner tasks run); undefined for a zip function. */
  image: string | undefined;
  /** An image function's `ImageConfig` overrides, as GetFunction reports them. */
  imageConfig: ImageConfig | undefined;
  /** `x86_64` or `arm64`. */
  architecture: 'x86_64' | 'arm64';
  /** Reported instead of the variables, as Lambda does when it cannot decrypt them. */
  environmentError: { ErrorCode: string; Message: string } | undefined;
  /** Its async-invocation destinations (GetFunctionEventInvokeConfig). */
  destinations: { onSuccess?: string; onFailure?: string } | undefined;
  /** Its execution role's ARN, as GetFunction reports it. */
  role: string;
}

/**
 * A container image function's overrides of its image's settings (Lambda's `ImageConfig`).
 *
 * @example
 * ```ts
 * import type { ImageConfig } from '@immortal-lambda/local';
 * const config: ImageConfig = { command: ['jobs/transcode.handler'], workingDirectory: '/var/task' };
 * ```
 */
export interface ImageConfig {
  command?: string[];
  entryPoint?: string[];
  workingDirectory?: string;
}

/**
 * What {@link FunctionRegistry.registerFunction} takes.
 *
 * @example
 * ```ts
 * import type { FunctionSpec } from '@immortal-lambda/local';
 * const spec: FunctionSpec = { name: 'report', folder: 'dist/report', handler: 'index.handler' };
 * ```
 */
export interface FunctionSpec {
  name: string;
  /** The folder whose contents are the function's code (zipped once, at registration). */
  folder?: string;
  /** The code as a zip, instead of a folder (served as it is, however it is built). */
  zip?: Buffer;
  /**
   * A container image function: the local image (as podman names it) that holds its code. Its
   * handler is the image's command unless `handler` or `imageConfig.command` says otherwise.
   */
  image?: string;
  /** An image function's `ImageConfig` overrides. */
  imageConfig?: ImageConfig;
  /** Default `x86_64`. */
  architecture?: 'x86_64' | 'arm64';
  /** Report this CodeSha256 instead of the zip's own (a code mismatch). */
  codeSha256?: string;
  /** Report the environment as undecryptable, as Lambda does without kms:Decrypt. */
  environmentError?: { ErrorCode: string; Message: string };
  /** Async-invocation destinations: ARNs of SQS queues, SNS topics, event buses or functions. */
  destinations?: { onSuccess?: string; onFailure?: string };
  /** Lambda's handler setting, e.g. `index.handler` (an image function has none: its command). */
  handler?: string;
  /** Default `1`; `$LATEST` is registered too. */
  version?: string;
  runtime?: string;
  memorySize?: number;
  timeout?: number;
  environment?: Record<string, string>;
  /** Its execution role's ARN (default `arn:aws:iam::<account>:role/<name>-role`). */
  role?: string;
  /** Layer ARNs, as returned by {@link FunctionRegistry.registerLayer}. */
  layers?: string[];
}

/**
 * Functions and layers registered from local folders, zipped once with their real CodeSha256.
 *
 * @example
 * ```ts
 * import { FunctionRegistry } from '@immortal-lambda/local';
 * const registry = new FunctionRegistry('eu-west-1');
 * const layer = registry.registerLayer('deps', 'dist/layer');
 * registry.registerFunction({ name: 'report', folder: 'dist/report', handler: 'index.handler', layers: [layer] });
 * ```
 */
export class FunctionRegistry {
  readonly region: string;
  readonly #functions = new Map<string, LocalFunction>();
  readonly #layers = new Map<string, { arn: string; zip: Buffer; sha256: string }>();

  constructor(region: string) {
    this.region = region;
  }

  registerFunction(spec: FunctionSpec): LocalFunction {
    if (spec.image !== undefined) return this.#registerImageFunction(spec, spec.image);
    if (spec.handler === undefined) {
      throw new RegistrationError(`function ${spec.name}: give its handler, e.g. index.handler`);
    }
    if ((spec.folder === undefined) === (spec.zip === undefined)) {
      throw new RegistrationError(`function ${spec.name}: give its code as either a folder or a zip`);
    }
    const folder = spec.folder === undefined ? undefined : resolve(spec.folder);
    if (folder !== undefined) checkFolder(spec.name, spec.handler, folder);
    for (const layer of spec.layers ?? []) {
      if (!this.#layers.has(layer))
        throw new RegistrationError(`function ${spec.name}: layer ${layer} is not registered`);
    }
    const zip = spec.zip ?? zipFolder(folder as string);
    return this.#add({
      ...this.#common(spec),
      handler: spec.handler,
      // The Node this plane runs on, so that the runner (the same Node, locally) accepts it.
      runtime: spec.runtime ?? `nodejs${process.versions.node.split('.')[0]}.x`,
      layers: spec.layers ?? [],
      zip,
      sha256: spec.codeSha256 ?? codeSha256(zip),
      folder,
      packageType: 'Zip',
      image: undefined,
      imageConfig: undefined,
    });
  }

  /** What every function version has, whatever its package type. */
  #common(spec: FunctionSpec) {
    return {
      name: spec.name,
      version: spec.version ?? '1',
      arn: `arn:aws:lambda:${this.region}:${ACCOUNT}:function:${spec.name}`,
      memorySize: spec.memorySize ?? 1024,
      timeout: spec.timeout ?? 900,
      environment: spec.environment ?? {},
      architecture: spec.architecture ?? 'x86_64',
      environmentError: spec.environmentError,
      destinations: spec.destinations,
      role: spec.role ?? `arn:aws:iam::${ACCOUNT}:role/${spec.name}-role`,
    };
  }

  #add(fn: LocalFunction): LocalFunction {
    this.#functions.set(`${fn.name}:${fn.version}`, fn);
    this.#functions.set(`${fn.name}:$LATEST`, fn);
    return fn;
  }

  /** A container image function: no zip; its code is the image its runner tasks run. */
  #registerImageFunction(spec: FunctionSpec, image: string): LocalFunction {
    if (spec.folder !== undefined || spec.zip !== undefined) {
      throw new RegistrationError(
        `function ${spec.name}: an image function's code is its image (${image}); give no folder or zip`,
      );
    }
    if (spec.layers !== undefined && spec.layers.length > 0) {
      throw new RegistrationError(`function ${spec.name}: container image functions have no layers`);
    }
    return this.#add({
      ...this.#common(spec),
      // Lambda reports no handler for an image: it is the image's command (or its override).
      handler: spec.handler ?? spec.imageConfig?.command?.[0] ?? '',
      runtime: '',
      layers: [],
      zip: Buffer.alloc(0),
      sha256: spec.codeSha256 ?? createHash('sha256').update(image).digest('hex'),
      folder: undefined,
      packageType: 'Image',
      image,
      imageConfig: spec.imageConfig,
    });
  }

  /** Registers a layer version from a folder or a zip; returns its ARN. */
  registerLayer(name: string, source: string | Buffer, version = 1): string {
    let zip: Buffer;
    if (typeof source === 'string') {
      const path = resolve(source);
      if (!existsSync(path) || !statSync(path).isDirectory()) {
        throw new RegistrationError(`layer ${name}: the folder ${path} does not exist`);
      }
      zip = zipFolder(path);
    } else {
      zip = source;
    }
    const arn = `arn:aws:lambda:${this.region}:${ACCOUNT}:layer:${name}:${version}`;
    this.#layers.set(arn, { arn, zip, sha256: codeSha256(zip) });
    return arn;
  }

  /** A function by name or ARN and qualifier. */
  findFunction(nameOrArn: string, qualifier: string | undefined): LocalFunction | undefined {
    const match = /^arn:aws[a-z-]*:lambda:[^:]+:\d+:function:([^:]+)(?::(.+))?$/.exec(nameOrArn);
    const name = match?.[1] ?? nameOrArn;
    return this.#functions.get(`${name}:${qualifier ?? match?.[2] ?? '$LATEST'}`);
  }

  findLayer(arn: string) {
    return this.#layers.get(arn);
  }
}

/** A function folder must exist and hold the module its handler names. */
function checkFolder(name: string, handler: string, folder: string): void {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new RegistrationError(
      `function ${name}: the folder ${folder} does not exist; build the function first`,
    );
  }
  const module = /^((?:.*\/)?[^/.]+)\.[^/]+$/.exec(handler)?.[1];
  const found =
    module && ['', '.js', '.mjs', '.cjs'].some((ext) => existsSync(join(folder, `${module}${ext}`)));
  if (!found) {
    throw new RegistrationError(
      `function ${name}: the handler "${handler}" names no file in ${folder} (looked for ${module ?? handler}.js, .mjs, .cjs)`,
    );
  }
}
