import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** The runner CLI the tests run: the package's, or another build of it (`IMMORTAL_RUNNER_CLI`: the standalone one). */
export const CLI = process.env.IMMORTAL_RUNNER_CLI ?? join(import.meta.dirname, '..', '..', 'dist', 'cli.js');

export interface RunnerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Every JSON line the process printed. */
  records: Record<string, unknown>[];
  /** The runner's closing record. */
  outcome: Record<string, unknown> | undefined;
  /** What the fixture handlers printed as `{ observed }`. */
  observed: Record<string, unknown> | undefined;
}

/** Runs `immortal-runner` as a real process with exactly the given environment (plus PATH). */
export function runCli(
  env: Record<string, string>,
  options: {
    onLine?: (line: string, child: ReturnType<typeof spawn>) => void;
    timeoutMs?: number;
    cwd?: string;
  } = {},
): Promise<RunnerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI], {
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        options.onLine?.(pending.slice(0, newline), child);
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`the runner did not exit within ${options.timeoutMs ?? 30_000} ms:\n${stdout}\n${stderr}`),
      );
    }, options.timeoutMs ?? 30_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const records = `${stdout}\n${stderr}`
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        records,
        outcome: records.find((r) => r.message === 'immortal-runner finished'),
        observed: records.find((r) => r.observed)?.observed as Record<string, unknown> | undefined,
      });
    });
  });
}
