import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { handlerProblem } from '@immortal-lambda/protocol';
import { HandlerLoadError } from './errors.js';
import { inside } from './paths.js';

/**
 * A loaded handler: Lambda calls it with (event, context, callback).
 *
 * @example
 * ```ts
 * import type { LoadedHandler } from '@immortal-lambda/runner';
 * const call = (handler: LoadedHandler) => handler({}, context, () => {});
 * ```
 */
export type LoadedHandler = (event: unknown, context: unknown, callback: unknown) => unknown;

/**
 * Splits `dir/file.export.path` the way Lambda does: the module, then the export path.
 *
 * @example
 * ```ts
 * import { splitHandler } from '@immortal-lambda/runner';
 * splitHandler('src/jobs/report.handler'); // { modulePath: 'src/jobs/report', exportPath: ['handler'] }
 * ```
 */
export function splitHandler(handler: string): { modulePath: string; exportPath: string[] } {
  const problem = handlerProblem(handler);
  const match = /^((?:.*\/)?[^/.]+)\.([^/]+)$/.exec(handler);
  if (problem !== undefined || !match?.[1] || !match[2]) {
    throw new HandlerLoadError(
      `the handler ${JSON.stringify(handler)} ${problem ?? 'cannot be read'}: a handler names a module inside the task root and its export, path/to/file.export (for example index.handler)`,
    );
  }
  return { modulePath: match[1], exportPath: match[2].split('.') };
}

function isEsmPackage(file: string, root: string): boolean {
  let directory = dirname(file);
  for (;;) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: string }).type === 'module';
      } catch {
        return false;
      }
    }
    const parent = dirname(directory);
    if (parent === directory || !directory.startsWith(dirname(root))) return false;
    directory = parent;
  }
}

const isFile = (path: string) => existsSync(path) && statSync(path).isFile();

/**
 * Imports the handler the way Lambda's Node runtime does: `path/to/file.export` under the task
 * root, trying the file as named, then `.js` (ESM when the nearest package.json says
 * `"type": "module"`), `.mjs` and `.cjs`; then walks the export path.
 *
 * @example
 * ```ts
 * import { loadHandler } from '@immortal-lambda/runner';
 * const handler = await loadHandler('/var/task', 'index.handler');
 * ```
 */
export async function loadHandler(
  taskRoot: string,
  handler: string,
  options: { allowedRoots?: readonly string[] } = {},
): Promise<LoadedHandler> {
  const { modulePath, exportPath } = splitHandler(handler);
  const base = resolve(taskRoot, modulePath);
  const candidates: [string, 'cjs' | 'esm'][] = [];
  if (isFile(base)) candidates.push([base, 'cjs']);
  if (isFile(`${base}.js`))
    candidates.push([`${base}.js`, isEsmPackage(`${base}.js`, taskRoot) ? 'esm' : 'cjs']);
  if (isFile(`${base}.mjs`)) candidates.push([`${base}.mjs`, 'esm']);
  if (isFile(`${base}.cjs`)) candidates.push([`${base}.cjs`, 'cjs']);
  const found = candidates[0];
  if (!found) {
    throw new HandlerLoadError(
      `cannot find the handler module "${modulePath}" in ${taskRoot} (tried ${modulePath}, .js, .mjs and .cjs); check the function's handler setting "${handler}"`,
    );
  }
  const [file, format] = found;
  // The module's real path, links followed, must lie in the task root (or a layer root).
  const real = realpathSync(file);
  const roots = [taskRoot, ...(options.allowedRoots ?? [])].map((root) => {
    try {
      return realpathSync(root);
    } catch {
      return resolve(root);
    }
  });
  if (!roots.some((root) => real !== root && inside(root, real))) {
    throw new HandlerLoadError(
      `the handler module ${file} resolves to ${real}, outside ${roots.join(' and ')}; refusing to load it`,
    );
  }
  let loaded: unknown;
  try {
    loaded = format === 'esm' ? await import(pathToFileURL(file).href) : createRequire(file)(file);
  } catch (error) {
    throw new HandlerLoadError(
      `the handler module ${file} threw while loading: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  // Only own properties are exports: `constructor`, `toString` and the like are not handlers.
  let target: unknown = loaded;
  for (const key of exportPath) {
    const holder = target;
    target =
      (typeof holder === 'object' || typeof holder === 'function') &&
      holder !== null &&
      Object.hasOwn(holder, key)
        ? (holder as Record<string, unknown>)[key]
        : undefined;
  }
  if (typeof target !== 'function') {
    throw new HandlerLoadError(
      `${file} has no function export "${exportPath.join('.')}" (found ${target === undefined ? 'nothing' : typeof target}); check the function's handler setting "${handler}"`,
    );
  }
  return target as LoadedHandler;
}
