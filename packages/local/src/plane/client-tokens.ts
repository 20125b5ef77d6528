import { createHash } from 'node:crypto';
import { ApiError } from '../errors.js';

type Failure = { arn: string; reason: string };

/** What an earlier RunTask with the same token and parameters answered: its task, or its failures. */
export type EarlierAnswer = { taskArn: string } | { failures: Failure[] };

/**
 * RunTask's client tokens, per cluster, as ECS keeps them: the same token with the same
 * parameters gets the first answer again; with other parameters, `ConflictException` naming the
 * task the token started. Whether a token whose call answered only `failures[]` is remembered
 * is a choice (ECS's documentation is silent): remembered, it gets those failures again, and
 * other parameters a conflict naming no task.
 */
export class ClientTokens {
  readonly #used = new Map<
    string,
    { fingerprint: string } & Partial<{ taskArn: string; failures: Failure[] }>
  >();
  readonly #rememberFailures: boolean;

  constructor(rememberFailures: boolean) {
    this.#rememberFailures = rememberFailures;
  }

  /**
   * The token of a RunTask request: its key and fingerprint, and what an earlier call with it
   * answered (undefined: none). Throws ConflictException when the parameters differ.
   */
  check(cluster: string, body: Record<string, unknown>) {
    const { clientToken, ...rest } = body;
    if (typeof clientToken !== 'string') return { key: undefined, fingerprint: '', earlier: undefined };
    const key = `${cluster}|${clientToken}`;
    const fingerprint = createHash('sha256').update(JSON.stringify(rest)).digest('hex');
    const seen = this.#used.get(key);
    if (seen && seen.fingerprint !== fingerprint) {
      // As ECS does, the exception names the task the token already started (none: no task).
      throw new ApiError(
        'ConflictException',
        `The clientToken ${clientToken} was used with different parameters.`,
        400,
        { resourceIds: seen.taskArn ? [seen.taskArn] : [] },
      );
    }
    const earlier: EarlierAnswer | undefined = seen?.taskArn
      ? { taskArn: seen.taskArn }
      : seen?.failures
        ? { failures: seen.failures }
        : undefined;
    return { key, fingerprint, earlier };
  }

  /** The token started this task. */
  started(key: string | undefined, fingerprint: string, taskArn: string): void {
    if (key !== undefined) this.#used.set(key, { fingerprint, taskArn });
  }

  /** The token's call answered only these failures: kept when failures are remembered. */
  failed(key: string | undefined, fingerprint: string, failures: Failure[]): void {
    if (key !== undefined && this.#rememberFailures) this.#used.set(key, { fingerprint, failures });
  }
}
