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
  sha256: string;
  folder: string;
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
  folder: string;
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
    const folder = resolve(spec.folder);
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
    for (const layer of spec.layers ?? []) {
      if (!this.#layers.has(layer))
        throw new RegistrationError(`function ${spec.name}: layer ${layer} is not registered`);
    }
    const zip = zipFolder(folder);
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
      sha256: codeSha256(zip),
      folder,
    };
    this.#functions.set(`${spec.name}:${version}`, fn);
    this.#functions.set(`${spec.name}:$LATEST`, fn);
    return fn;
  }

  registerLayer(name: string, folder: string, version = 1): string {
    const path = resolve(folder);
    if (!existsSync(path) || !statSync(path).isDirectory()) {
      throw new RegistrationError(`layer ${name}: the folder ${path} does not exist`);
    }
    const arn = `arn:aws:lambda:${this.region}:${ACCOUNT}:layer:${name}:${version}`;
    const zip = zipFolder(path);
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
