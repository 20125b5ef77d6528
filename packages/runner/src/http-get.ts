import type { IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Fetch, FetchResponse } from './download.js';

/** Redirects followed before a download is refused (S3 answers a GET of a presigned URL directly). */
const MAX_REDIRECTS = 5;

/** An answer of {@link httpGet}: the response's status, headers and body as a stream of chunks. */
class NodeResponse implements FetchResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  readonly body: AsyncIterable<Uint8Array>;

  constructor(message: IncomingMessage) {
    this.status = message.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.headers = {
      get: (name) => {
        const value = message.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    };
    this.body = message;
  }

  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.body) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

function getOnce(url: URL, init: Parameters<Fetch>[1]): Promise<IncomingMessage> {
  const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
  if (send === undefined) {
    return Promise.reject(new TypeError(`only http and https URLs can be downloaded, not ${url.protocol}`));
  }
  return new Promise((resolve, reject) => {
    // A connection of its own, closed after the answer: nothing is left open to keep the task alive.
    const request = send(
      url,
      {
        method: 'GET',
        agent: false,
        ...(init?.signal ? { signal: init.signal } : {}),
        ...(init?.headers ? { headers: init.headers } : {}),
      },
      resolve,
    );
    request.on('error', reject);
    request.end();
  });
}

/**
 * A GET through Node's own `http` and `https` modules, answering the part of `fetch` the runner
 * uses. The runner's default: the first `fetch` of a process loads its HTTP stack (about 50 ms on
 * a task's start), and its web streams read a large body several times slower. Follows up to
 * five redirects; the abort signal ends the request and its body; `headers` are sent as given
 * (a `range`, to fetch part of the body).
 *
 * @example
 * ```ts
 * import { downloadVerified, httpGet } from '@immortal-lambda/runner';
 * const zip = await downloadVerified({ url, sha256, label: 'the code', maxBytes: 262_144_000, fetch: httpGet });
 * ```
 */
export const httpGet: Fetch = async (url, init) => {
  let target = new URL(url);
  for (let redirects = 0; ; redirects++) {
    const message = await getOnce(target, init);
    const location = message.headers.location;
    if (!isRedirect(message.statusCode) || location === undefined || redirects === MAX_REDIRECTS) {
      return new NodeResponse(message);
    }
    message.resume();
    target = new URL(location, target);
  }
};

const isRedirect = (status: number | undefined) =>
  status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
