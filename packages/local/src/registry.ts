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
  /** Reported instead of the variables, as Lambda does when it cannot decrypt them. */
  environmentError: { ErrorCode: string; Message: string } | undefined;
  /** Its async-invocation destinations (GetFunctionEventInvokeConfig). */
  destinations: { onSuccess?: string; onFailure?: string } | undefined;
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
  /** `Image` functions have no zip: GetFunction answers with an image URI, as Lambda does. */
  packageType?: 'Zip' | 'Image';
  /** Report this CodeSha256 instead of the zip's own (a code mismatch). */
  codeSha256?: string;
  /** Report the environment as undecryptable, as Lambda does without kms:Decrypt. */
  environmentError?: { ErrorCode: string; Message: string };
  /** Async-invocation destinations: ARNs of SQS queues, SNS topics, event buses or functions. */
  destinations?: { onSuccess?: string; onFailure?: string };
  /** Lambda's handler setting, e.g. `index.handler`. */
  handler: string;
  /** Default `1`; `$LATEST` is registered too. */
  version?: string;
  runtime?: string;
  memorySize?: number;
  timeout?: number;
  environment?: Record<string, string>;
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
    if ((spec.folder === undefined) === (spec.zip === undefined)) {
      throw new RegistrationError(`function ${spec.name}: give its code as either a folder or a zip`);
    }
    const folder = spec.folder === undefined ? undefined : resolve(spec.folder);
    if (folder !== undefined) checkFolder(spec, folder);
    for (const layer of spec.layers ?? []) {
      if (!this.#layers.has(layer))
        throw new RegistrationError(`function ${spec.name}: layer ${layer} is not registered`);
    }
    const zip = spec.zip ?? zipFolder(folder as string);
    const version = spec.version ?? '1';
    const fn: LocalFunction = {
      name: spec.name,
      version,
      arn: `arn:aws:lambda:${this.region}:${ACCOUNT}:function:${spec.name}`,
      handler: spec.handler,
      // The Node this plane runs on, so that the runner (the same Node, locally) accepts it.
      runtime: spec.runtime ?? `nodejs${process.versions.node.split('.')[0]}.x`,
      memorySize: spec.memorySize ?? 1024,
      timeout: spec.timeout ?? 900,
      environment: spec.environment ?? {},
      layers: spec.layers ?? [],
      zip,
      sha256: spec.codeSha256 ?? codeSha256(zip),
      folder,
      packageType: spec.packageType ?? 'Zip',
      environmentError: spec.environmentError,
      destinations: spec.destinations,
    };
    this.#functions.set(`${spec.name}:${version}`, fn);
    this.#functions.set(`${spec.name}:$LATEST`, fn);
    return fn;
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
function checkFolder(spec: FunctionSpec, folder: string): void {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new RegistrationError(
      `function ${spec.name}: the folder ${folder} does not exist; build the function first`,
    );
  }
  const module = /^((?:.*\/)?[^/.]+)\.[^/]+$/.exec(spec.handler)?.[1];
  const found =
    module && ['', '.js', '.mjs', '.cjs'].some((ext) => existsSync(join(folder, `${module}${ext}`)));
  if (!found) {
    throw new RegistrationError(
      `function ${spec.name}: the handler "${spec.handler}" names no file in ${folder} (looked for ${module ?? spec.handler}.js, .mjs, .cjs)`,
    );
  }
}
