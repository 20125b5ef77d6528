// Installs a package from the npm registry into .tools/<name> once, for the scripts that need
// a tool the machine does not have (pnpm, other Node versions).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Installs `spec` (e.g. `pnpm@10.34.9`) into `.tools/<folder>` unless `marker` already exists. */
export function installTool(folder, spec, marker) {
  const prefix = join(root, '.tools', folder);
  if (marker && existsSync(join(prefix, marker))) return prefix;
  console.error(`[tools] installing ${spec} into .tools/${folder}`);
  const install = spawnSync(
    'npm',
    ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', spec],
    { stdio: 'inherit' },
  );
  if (install.status !== 0) {
    console.error(`[tools] npm could not install ${spec} (exit ${install.status})`);
    process.exit(install.status ?? 1);
  }
  return prefix;
}
