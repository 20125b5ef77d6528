import { join } from 'node:path';

/**
 * The runner CLI built in this workspace. The plane does not depend on the runner package; its
 * tests hand it the command, as a user without the package installed would.
 */
export const RUNNER_CLI = join(import.meta.dirname, '..', '..', '..', 'runner', 'dist', 'cli.js');
