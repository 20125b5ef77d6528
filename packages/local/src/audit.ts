import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

/**
 * One AWS call the local plane (or its S3 front) served, as IAM would authorise it: the action,
 * the resource AWS evaluates it on (the literal `*` for calls AWS authorises on `*`), the
 * condition keys this system relies on, and the access key that signed it (which role made it).
 *
 * @example
 * ```ts
 * import type { AuditedCall } from '@immortal-lambda/local';
 * const denied = (call: AuditedCall) => `${call.action} on ${call.resource}`;
 * ```
 */
export interface AuditedCall {
  action: string;
  resource: string;
  context: Record<string, string>;
  accessKeyId: string | undefined;
}

/**
 * The access key id of a SigV4-signed request (`Credential=AKID/date/region/service/aws4_request`):
 * which credentials, and so which role, made the call.
 *
 * @example
 * ```ts
 * import { accessKeyOf } from '@immortal-lambda/local';
 * createServer((request) => console.log(accessKeyOf(request)));
 * ```
 */
export function accessKeyOf(request: IncomingMessage): string | undefined {
  const header = String(request.headers.authorization ?? '');
  return /Credential=([^/,\s]+)\//.exec(header)?.[1];
}

/**
 * The access key a role's temporary credentials sign with on the local plane: the same role, the
 * same key, so that an `authorize` hook knows which role made a call. With `authorize` set, the
 * plane gives each task its task role's key, as ECS gives a task its role's credentials.
 *
 * @example
 * ```ts
 * import { roleAccessKey } from '@immortal-lambda/local';
 * const roles = new Map([[roleAccessKey(taskRoleArn), taskRoleArn]]);
 * const roleOf = (call: AuditedCall) => roles.get(call.accessKeyId ?? '');
 * ```
 */
export function roleAccessKey(roleArn: string): string {
  return `ASIA${createHash('sha256').update(roleArn).digest('hex').slice(0, 16).toUpperCase()}`;
}

/** IAM's words for a call its caller may not make, as ECS, Lambda and S3 each answer them. */
export function deniedMessage(call: AuditedCall): string {
  return `User: ${call.accessKeyId ?? 'anonymous'} is not authorized to perform: ${call.action} on resource: ${call.resource} because no identity-based policy allows the ${call.action} action`;
}

/** The `Host` values a loopback server on `port` answers: any other is a rebound name, refused. */
export function loopbackHosts(port: number, ...more: string[]): ReadonlySet<string> {
  return new Set(['127.0.0.1', 'localhost', '[::1]', ...more].map((host) => `${host}:${port}`));
}

/** The service's answer to a call its caller may not make: ECS 400, Lambda 403. */
export function accessDenied(call: AuditedCall): ApiError {
  return new ApiError(
    'AccessDeniedException',
    deniedMessage(call),
    call.action.startsWith('lambda:') ? 403 : 400,
  );
}
