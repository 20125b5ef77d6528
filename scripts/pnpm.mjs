#!/usr/bin/env node
// Runs pnpm on a machine that only has Node and npm.
//
// The pnpm version comes from `packageManager` in the root package.json. If a pnpm of that
// version is on PATH it is used; otherwise it is installed once with npm into `.tools/pnpm`.
// The workspace is then installed from the committed lockfile, and the given arguments are
// passed to pnpm: `node scripts/pnpm.mjs run check` is `pnpm run check`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { installTool, root } from './tools.mjs';

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
  const installed = join('node_modules', 'pnpm', 'package.json');
  const current = join(root, '.tools', 'pnpm', installed);
  const fresh = existsSync(current) && JSON.parse(readFileSync(current, 'utf8')).version === version;
  const prefix = installTool('pnpm', `pnpm@${version}`, fresh ? installed : undefined);
  return {
    command: process.execPath,
    prefix: [join(prefix, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs')],
    path: join(prefix, 'node_modules', '.bin'),
  };
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
