import { lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UnsafeArchiveError } from '../errors.js';
import { inside } from '../paths.js';

/**
 * Enters part `i` of `parts` from `current`, a folder already entered (a real path inside the
 * root), at the moment of the write: a missing part is created as a real folder; a link (left
 * by an earlier archive) is followed only when its real path is a folder inside the root; a
 * file in the way is refused. Returns the part's real path.
 */
function enterPart(
  realRoot: string,
  current: string,
  parts: readonly string[],
  i: number,
  name: string,
  label: string,
): string {
  const next = join(current, parts[i] as string);
  try {
    // Created here, so a real folder: nothing else to check.
    mkdirSync(next, { mode: 0o755 });
    return next;
  } catch (error) {
    if ((error as { code?: string }).code !== 'EEXIST') throw error;
  }
  const info = lstatSync(next);
  const shown = parts.slice(0, i + 1).join('/');
  if (info.isDirectory()) return next;
  if (!info.isSymbolicLink()) {
    throw new UnsafeArchiveError(`${label}: entry "${name}" needs ${shown} to be a folder, and it is a file`);
  }
  let real: string | undefined;
  try {
    real = realpathSync(next);
  } catch {
    real = undefined;
  }
  if (real === undefined || !inside(realRoot, real)) {
    throw new UnsafeArchiveError(
      `${label}: entry "${name}" would be written through ${shown}, a link that leads outside ${realRoot}; refusing to write into it`,
    );
  }
  if (!statSync(real).isDirectory()) {
    throw new UnsafeArchiveError(
      `${label}: entry "${name}" needs ${shown} to be a folder, and it links to a file`,
    );
  }
  return real;
}

/**
 * Walks to the folder `parts` under the real root one part at a time (see {@link enterPart}):
 * a part is created only once its parent is known to be inside the root. Returns the folder's
 * real path.
 *
 * @example
 * ```ts
 * const folder = enterFolder('/var/task', ['node_modules', 'pkg'], 'node_modules/pkg/index.js', 'the code');
 * ```
 */
export function enterFolder(realRoot: string, parts: readonly string[], name: string, label: string): string {
  let current = realRoot;
  for (let i = 0; i < parts.length; i++) current = enterPart(realRoot, current, parts, i, name, label);
  return current;
}

/**
 * Enters each folder once, from its parent entered before. While folders and files are written
 * no link is created or removed on any path that leads to another entry (clashes were refused by
 * the plan), so a folder entered once stays what it was for those two phases. The links phase
 * enters every folder afresh with {@link enterFolder}.
 *
 * @example
 * ```ts
 * const enter = folderCache('/var/task', 'the code');
 * const folder = enter(['lib'], 'lib/a.js');
 * ```
 */
export function folderCache(
  realRoot: string,
  label: string,
): (parts: readonly string[], name: string) => string {
  const entered = new Map<string, string>();
  const enter = (parts: readonly string[], name: string): string => {
    if (parts.length === 0) return realRoot;
    const key = parts.join('/');
    let real = entered.get(key);
    if (real === undefined) {
      real = enterPart(realRoot, enter(parts.slice(0, -1), name), parts, parts.length - 1, name, label);
      entered.set(key, real);
    }
    return real;
  };
  return enter;
}
