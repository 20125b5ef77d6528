import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const root = join(import.meta.dirname, '..', '..', '..');

/**
 * In this repository the runner's dependencies are workspace packages, which npm cannot install
 * inside the image; `pnpm deploy` gathers the runner with them, offline, as the image's context.
 * (An app that installs @immortal-lambda/cdk from npm uses the construct's default image.)
 */
export function runnerContext(outdir: string): string {
  const context = join(resolve(outdir), 'runner-context');
  rmSync(context, { recursive: true, force: true });
  mkdirSync(dirname(context), { recursive: true });
  const local = join(root, '.tools', 'pnpm', 'node_modules', '.bin', 'pnpm');
  const pnpm = existsSync(local) ? local : 'pnpm';
  try {
    execFileSync(pnpm, ['--filter', '@immortal-lambda/runner', 'deploy', '--prod', '--legacy', context], {
      cwd: root,
      stdio: 'pipe',
    });
  } catch (error) {
    const output = (error as { stderr?: Buffer; stdout?: Buffer }).stderr?.toString() ?? '';
    throw new Error(
      `pnpm deploy of the runner into ${context} failed; build the workspace first:\n${output}`,
      {
        cause: error,
      },
    );
  }
  return context;
}
