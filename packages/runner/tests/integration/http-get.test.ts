import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadVerified } from '../../src/download.js';
import { httpGet } from '../../src/http-get.js';

const zip = randomBytes(3 * 1024 * 1024 + 17);
const sha256 = createHash('sha256').update(zip).digest('base64');
let server: Server;
let base: string;
const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => void> = {
  '/code.zip': (_request, response) => {
    response.writeHead(200, { 'content-length': String(zip.length), 'x-amz-id-2': 'one' });
    response.end(zip);
  },
  '/moved': (_request, response) => {
    response.writeHead(307, { location: '/code.zip' });
    response.end();
  },
  '/loop': (_request, response) => {
    response.writeHead(302, { location: '/loop' });
    response.end('again');
  },
  '/denied': (_request, response) => {
    response.writeHead(403, { 'content-type': 'application/xml' });
    response.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
  },
  '/metadata': (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ TaskARN: 'arn:aws:ecs:eu-west-1:123456789012:task/c/1' }));
  },
  '/stalls': (_request, response) => {
    response.writeHead(200, { 'content-length': '1000' });
    response.write('only the start');
  },
};

beforeAll(async () => {
  server = createServer((request, response) => routes[request.url ?? '']?.(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('httpGet answers what the runner reads of a response', () => {
  it('downloads and verifies a code zip as fetch would', async () => {
    // Act
    const body = await downloadVerified({
      url: `${base}/code.zip`,
      sha256,
      label: 'the code',
      maxBytes: 10 * 1024 * 1024,
      fetch: httpGet,
    });

    // Assess
    expect(body.equals(zip)).toBe(true);
  });

  it('answers the status, headers and JSON body', async () => {
    // Act
    const response = await httpGet(`${base}/metadata`);

    // Assess
    expect(response.status).toBe(200);
    expect(response.ok).toBe(true);
    expect(response.headers.get('Content-Type')).toBe('application/json');
    expect(response.headers.get('x-missing')).toBeNull();
    expect(await response.json()).toEqual({ TaskARN: 'arn:aws:ecs:eu-west-1:123456789012:task/c/1' });
  });

  it('follows a redirect to the object', async () => {
    // Act
    const response = await httpGet(`${base}/moved`);

    // Assess
    expect(response.status).toBe(200);
    expect(response.headers.get('x-amz-id-2')).toBe('one');
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(zip)).toBe(true);
  });

  it('answers the redirect itself after five, instead of following a loop for ever', async () => {
    // Act
    const response = await httpGet(`${base}/loop`);

    // Assess
    expect(response.status).toBe(302);
    expect(await response.text()).toBe('again');
  });

  it('lets the download name an expired URL from the refusal body', async () => {
    // Act
    const download = downloadVerified({
      url: `${base}/denied`,
      sha256,
      label: 'the code',
      maxBytes: 1024,
      fetch: httpGet,
    });

    // Assess
    await expect(download).rejects.toThrow(/has expired/);
  });

  it('ends a stalled body when its signal aborts, so the download can try again', async () => {
    // Prepare
    const controller = new AbortController();
    const response = await httpGet(`${base}/stalls`, { signal: controller.signal });

    // Act
    const reading = response.text();
    controller.abort();

    // Assess
    await expect(reading).rejects.toThrow(/abort/i);
  });

  it('refuses a URL that is not http or https, naming the scheme', async () => {
    // Act
    const answer = httpGet('file:///etc/passwd');

    // Assess
    await expect(answer).rejects.toThrow(/only http and https URLs can be downloaded, not file:/);
  });
});
