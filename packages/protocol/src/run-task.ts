/**
 * RunTask's limit on `overrides`, in characters, JSON included. ECS API reference
 * (ContainerOverride): "A total of 8192 characters are allowed for overrides. This limit includes
 * the JSON formatting characters of the override structure."
 *
 * @example
 * ```ts
 * import { RUN_TASK_OVERRIDES_LIMIT } from '@immortal-lambda/protocol';
 * const fits = JSON.stringify(overrides).length <= RUN_TASK_OVERRIDES_LIMIT;
 * ```
 */
export const RUN_TASK_OVERRIDES_LIMIT = 8192;

/**
 * RunTask's limit on `clientToken`: at most 64 ASCII characters. ECS remembers a token for 24
 * hours per cluster; the same token with the same parameters returns the first result.
 *
 * @example
 * ```ts
 * import { CLIENT_TOKEN_MAX_LENGTH } from '@immortal-lambda/protocol';
 * const fits = (token: string) => token.length <= CLIENT_TOKEN_MAX_LENGTH;
 * ```
 */
export const CLIENT_TOKEN_MAX_LENGTH = 64;

/**
 * What RunTask accepts as `clientToken`: printable ASCII, 1 to 64 characters. ECS API reference
 * (RunTask): "An identifier that you provide to ensure the idempotency of the request. It must be
 * unique and is case sensitive. Up to 64 ASCII characters are allowed."
 *
 * @example
 * ```ts
 * import { CLIENT_TOKEN_PATTERN } from '@immortal-lambda/protocol';
 * CLIENT_TOKEN_PATTERN.test('c0ffee-p1'); // true
 * ```
 */
export const CLIENT_TOKEN_PATTERN = /^[\x21-\x7e]{1,64}$/;

/**
 * What RunTask accepts as `startedBy`: letters, digits, `-`, `/` and `_`, at most 128. ECS API
 * reference (RunTask): "Up to 128 letters (uppercase and lowercase), numbers, hyphens (-),
 * forward slash (/), and underscores (_) are allowed."
 *
 * @example
 * ```ts
 * import { STARTED_BY_PATTERN } from '@immortal-lambda/protocol';
 * STARTED_BY_PATTERN.test('immortal-lambda/c0ffee'); // true
 * ```
 */
export const STARTED_BY_PATTERN = /^[A-Za-z0-9_/-]{1,128}$/;

/**
 * RunTask's limit on tags per task. ECS API reference (RunTask, tags): "Maximum number of tags
 * per resource - 50"; each key at most 128 characters and each value at most 256, and neither
 * may begin with `aws:` ("reserved for AWS use").
 *
 * @example
 * ```ts
 * import { MAX_TASK_TAGS } from '@immortal-lambda/protocol';
 * if (tags.length > MAX_TASK_TAGS) throw new Error('too many tags');
 * ```
 */
export const MAX_TASK_TAGS = 50;

/**
 * The n-th idempotency token of one invocation. The first is the request id, used by every
 * attempt (Spot and on-demand, retries), so a retried invocation meets the task its first attempt
 * started; the n-th (n > 0) is used only after ECS answered the first with `ConflictException`
 * naming no task (it remembered the token without one). A token that would not fit RunTask's rules
 * is replaced by a digest of it.
 *
 * @example
 * ```ts
 * import { clientToken } from '@immortal-lambda/protocol';
 * clientToken('c0ffee', 0); // 'c0ffee'
 * clientToken('c0ffee', 2); // 'c0ffee-p2'
 * ```
 */
export function clientToken(requestId: string, placement: number): string {
  const token = placement === 0 ? requestId : `${requestId}-p${placement}`;
  if (CLIENT_TOKEN_PATTERN.test(token)) return token;
  return digest(token);
}

/**
 * A deterministic 128-bit digest (four FNV-1a lanes) in 32 hex characters. Enough to keep
 * tokens and key parts of odd request ids distinct, and it spares cold starts the crypto module.
 *
 * @example
 * ```ts
 * import { digest } from '@immortal-lambda/protocol';
 * digest('a very long request id …').length; // 32
 * ```
 */
export function digest(text: string): string {
  const lanes = [0x811c9dc5, 0x01000193, 0x9e3779b9, 0x85ebca6b];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    for (let lane = 0; lane < lanes.length; lane++) {
      lanes[lane] = Math.imul((lanes[lane] as number) ^ (code + lane * 0x9e37), 0x01000193) >>> 0;
    }
  }
  return lanes.map((lane) => lane.toString(16).padStart(8, '0')).join('');
}

/**
 * The `startedBy` mark of an invocation's tasks: `immortal-lambda/<request id>`, made to fit
 * RunTask's rules. A retried invocation finds its earlier task by it (ListTasks `startedBy`).
 *
 * @example
 * ```ts
 * import { startedBy } from '@immortal-lambda/protocol';
 * startedBy('c0ffee'); // 'immortal-lambda/c0ffee'
 * ```
 */
export function startedBy(requestId: string): string {
  return `immortal-lambda/${requestId.replace(/[^A-Za-z0-9_/-]/g, '_')}`.slice(0, 128);
}
