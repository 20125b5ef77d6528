/**
 * One line of `immortal-lambda doctor`: what was checked, whether it holds, what was found, and,
 * when it does not hold, what to change.
 *
 * @example
 * ```ts
 * import type { Check } from '@immortal-lambda/cdk/doctor';
 * const failed = (checks: Check[]) => checks.filter((check) => !check.ok);
 * ```
 */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** A check that holds. */
export const pass = (name: string, detail: string): Check => ({ name, ok: true, detail });

/** A check that does not hold, with what to change. */
export const fail = (name: string, detail: string, fix: string): Check => ({ name, ok: false, detail, fix });

/** One line per check: `ok` or `FAIL`, the name, what was found, and the fix. */
export function formatCheck(check: Check): string {
  return `${check.ok ? 'ok  ' : 'FAIL'}  ${check.name}: ${check.detail}${check.fix ? `\n        fix: ${check.fix}` : ''}`;
}

/** What an AWS error says, for a check's line. */
export function describe(error: unknown): string {
  const { name, message } = error as { name?: string; message?: string };
  return `${name ?? 'Error'}: ${message ?? String(error)}`;
}
