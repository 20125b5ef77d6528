import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** What `lambda-sdk.cjs` exports. */
export type LambdaSdk = typeof import('./lambda-sdk.js');

/** The bundle of the Lambda client, beside this file in the image's build. */
const file = fileURLToPath(new URL('./lambda-sdk.cjs', import.meta.url));
/** V8's compiled code of that bundle, written when the image is built (see write-code-cache.ts). */
export const CODE_CACHE_FILE = `${file}.cache`;

/**
 * How the Lambda client started: from V8's compiled code (`used`), from its source because the
 * cache was made by another Node (`rejected`) or is not there (`absent`).
 */
export type CodeCacheStatus = 'used' | 'rejected' | 'absent';

let status: CodeCacheStatus | undefined;

/**
 * How this process's Lambda client started, for the runner's first log line; undefined where it
 * was not loaded through {@link loadLambdaSdk} (the package's own bin).
 *
 * @example
 * ```ts
 * log('INFO', 'Resuming', { sdkCodeCache: codeCacheStatus() });
 * ```
 */
export const codeCacheStatus = (): CodeCacheStatus | undefined => status;

/** The bundle as a script, started from its compiled code when the cache was made by this Node. */
export interface LoadedSdk {
  sdk: LambdaSdk;
  script: Script;
}

/**
 * Runs the Lambda client's bundle as CommonJS does, from V8's compiled code when
 * `lambda-sdk.cjs.cache` is there and was made by this Node's V8 (else V8 compiles the source as
 * usual). Parsing and compiling the SDK was most of what the image's runner spent before its first
 * call; Node offers no such cache for ES modules before 22, and from 22 only for every module of
 * the process, the handler's too.
 *
 * @example
 * ```ts
 * const { sdk } = loadLambdaSdk();
 * const lambda = new sdk.LambdaClient({});
 * ```
 */
export function loadLambdaSdk(options: { useCache?: boolean } = {}): LoadedSdk {
  const source = readFileSync(file, 'utf8');
  const cachedData = options.useCache === false ? undefined : readCache();
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  const module = { exports: {} as LambdaSdk };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  status = cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used';
  return { sdk: module.exports, script };
}

/** The cache's bytes, or undefined where the image's build wrote none. */
function readCache(): Buffer | undefined {
  try {
    return readFileSync(CODE_CACHE_FILE);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Writes the compiled code of a script that has run: what V8 compiled while it ran (the first
 * call's code too) is kept.
 *
 * @example
 * ```ts
 * const loaded = loadLambdaSdk({ useCache: false });
 * // … one call through loaded.sdk …
 * writeCodeCache(loaded);
 * ```
 */
export function writeCodeCache(loaded: LoadedSdk): number {
  const data = loaded.script.createCachedData();
  writeFileSync(CODE_CACHE_FILE, data);
  return data.length;
}
