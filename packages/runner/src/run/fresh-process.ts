import { HandlerLoadError } from '../errors.js';
import type { ExitCode } from '../exit-codes.js';
import { CHILD_UNREPORTED, childExit, killedChild } from './exit.js';
import { finish } from './finish.js';
import type { Prepared } from './prepare.js';
import type { Run } from './run.js';

/**
 * Runs the handler in a fresh runner process (through the exec wrapper when there is one), which
 * writes the attempt's outcome record and sends its outcome itself; the stop signal is forwarded
 * to it. Resolves to its exit code.
 */
export async function runInFreshProcess(run: Run, fresh: Prepared & { kind: 'fresh' }): Promise<ExitCode> {
  run.stop.unsubscribe();
  // The `running` record lands before the fresh process can write the attempt's end.
  await run.recorder?.flush();
  let child: { code: number | null; signal: string | null };
  try {
    child = await fresh.respawn(fresh.env, fresh.wrapper);
  } catch (error) {
    throw new HandlerLoadError(
      `the handler process could not be started${fresh.wrapper ? ` through AWS_LAMBDA_EXEC_WRAPPER ${fresh.wrapper}` : ''}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const code = childExit(child);
  // The fresh process wrote the attempt's record and sent its outcome.
  if (code !== CHILD_UNREPORTED) return code as ExitCode;
  return finish(run, killedChild());
}
