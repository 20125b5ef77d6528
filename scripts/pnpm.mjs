#!/usr/bin/env node
// Runs pnpm on a machine that only has Node and npm.
//
// The pnpm version comes from `packageManager` in the root package.json. If a pnpm of that
// version is on PATH it is used; otherwise it is installed once with npm into `.tools/pnpm`.
// The workspace is then installed from the committed lockfile, and the given arguments are
// passed to pnpm: `node scripts/pnpm.mjs run check` is `pnpm run check`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const [, version] = /^pnpm@(\d+\.\d+\.\d+)/.exec(manifest.packageManager ?? '') ?? [];
if (!version) {
  console.error('package.json must name the pnpm version in "packageManager", e.g. "pnpm@10.34.9"');
  process.exit(2);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function pnpmOnPath() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 && probe.stdout.trim() === version;
}

function localPnpm() {
  const prefix = join(root, '.tools', 'pnpm');
  const bin = join(prefix, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
  const installed = join(prefix, 'node_modules', 'pnpm', 'package.json');
  if (!existsSync(installed) || JSON.parse(readFileSync(installed, 'utf8')).version !== version) {
    console.error(`[setup] installing pnpm ${version} into .tools/pnpm`);
    const status = run('npm', [
      'install',
      '--prefix',
      prefix,
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      `pnpm@${version}`,
    ]);
    if (status !== 0) {
      console.error(`[setup] npm could not install pnpm@${version} (exit ${status})`);
      process.exit(status);
    }
  }
  return { command: process.execPath, prefix: [bin], path: join(prefix, 'node_modules', '.bin') };
}

const pnpm = pnpmOnPath() ? { command: 'pnpm', prefix: [], path: undefined } : localPnpm();
// turbo and package scripts call `pnpm` by name, so a locally installed one goes on PATH.
const env = {
  ...process.env,
  COREPACK_ENABLE_STRICT: '0',
  PATH: pnpm.path ? `${pnpm.path}${delimiter}${process.env.PATH ?? ''}` : process.env.PATH,
};

const install = run(pnpm.command, [...pnpm.prefix, 'install', '--frozen-lockfile', '--prefer-offline'], {
  env,
});
if (install !== 0) {
  console.error(`[setup] pnpm install failed (exit ${install})`);
  process.exit(install);
}
process.exit(run(pnpm.command, [...pnpm.prefix, ...process.argv.slice(2)], { env }));
