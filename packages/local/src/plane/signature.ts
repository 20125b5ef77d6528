import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** AWS refuses a request signed more than 15 minutes away from its own clock. */
const CLOCK_SKEW_MS = 15 * 60_000;

const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');
const hmac = (key: string | Buffer, text: string) => createHmac('sha256', key).update(text).digest();

/** RFC 3986 encoding, as SigV4 canonicalises names and values. */
const encode = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Why a request is not signed, with Signature Version 4, by a key the plane handed out
 * (`undefined` when it is): every key it hands out signs with one secret, so a request made
 * without it, from a web page say, is refused. The canonical request is built as AWS's
 * documentation gives it for services other than S3: the path encoded once more, the query
 * sorted, the signed headers as sent, the body's SHA-256.
 *
 * @example
 * ```ts
 * const problem = signatureProblem(request, body, secret, Date.now());
 * if (problem) answerUnsigned(response, problem);
 * ```
 */
export function signatureProblem(
  request: IncomingMessage,
  body: string,
  secret: string,
  now: number,
): string | undefined {
  const authorization = String(request.headers.authorization ?? '');
  const parsed =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (!parsed)
    return 'the request is not signed with Signature Version 4 (no Authorization header of the form AWS4-HMAC-SHA256 Credential=…)';
  const [, , day, region, service, signedHeaders, signature] = parsed as unknown as string[];
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  const at = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!at || !amzDate.startsWith(String(day)))
    return 'the request has no X-Amz-Date of the day it was signed';
  const [year, month, date, hours, minutes, seconds] = at.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const signedAt = Date.UTC(year, month - 1, date, hours, minutes, seconds);
  if (Math.abs(now - signedAt) > CLOCK_SKEW_MS)
    return 'the request was signed more than 15 minutes away from now';
  const url = new URL(request.url ?? '/', 'http://local');
  // The path as sent (already encoded once), its dot segments resolved, encoded once more.
  const rawPath = (request.url ?? '/').split('?')[0] ?? '/';
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `/${segments.join('/')}${segments.length > 0 && rawPath.endsWith('/') ? '/' : ''}`;
  const canonicalPath = encode(normalized).replace(/%2F/g, '/');
  const canonicalQuery = [...url.searchParams.entries()]
    .map(([name, value]): [string, string] => [encode(name), encode(value)])
    // By code point, names first, then values: SigV4's order.
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : x > y ? 1 : 0) : a < b ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const names = String(signedHeaders).split(';');
  const canonicalHeaders = names
    .map((name) => {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value.join(',') : String(value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const payloadHash = String(request.headers['x-amz-content-sha256'] ?? sha256(body));
  const canonicalRequest = [
    request.method,
    canonicalPath,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${secret}`, String(day));
  for (const part of [String(region), String(service), 'aws4_request']) key = hmac(key, part);
  const expected = createHmac('sha256', key).update(stringToSign).digest();
  const given = Buffer.from(String(signature), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return 'the signature does not match: sign with the credentials the plane handed out (its environment())';
  }
  return undefined;
}
