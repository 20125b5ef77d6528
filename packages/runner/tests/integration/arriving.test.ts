import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodeFetchError } from '../../src/errors.js';
import { httpGet } from '../../src/http-get.js';
import { type InstallOptions, installArchive } from '../../src/install.js';
import { buildZip, type ZipSource } from '../helpers/zip-writer.js';

/** A function's code in small: files over several folders, some executable, some stored. */
function codeLike(count: number): ZipSource[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `node_modules/pkg${i % 7}/lib${i % 3}/file${i}.js`,
    data: `module.exports = ${i};\n`.repeat(20 + (i % 40)),
    ...(i % 11 === 0 ? { mode: 0o755 } : {}),
    ...(i % 5 === 0 ? { store: true } : {}),
  }));
}

/** Every file under `root` with its mode and content, by path. */
function tree(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const path = join(root, name);
    if (lstatSync(path).isFile())
      files[name] = `${(statSync(path).mode & 0o777).toString(8)} ${readFileSync(path)}`;
  }
  return files;
}

/** How the test server answers the archive's GETs. */
interface Serving {
  /** Range requests are answered (206), as S3 answers them; else the whole object. */
  ranges: boolean;
  /** The bytes answered for a range, when not the archive's own. */
  tail?: (bytes: Buffer) => Buffer;
  /** The range's answer sends its headers and never its body. */
  tailHangs?: boolean;
  /** The first whole GET sends this many bytes, then waits until `release` is called. */
  holdAt?: number;
  /** The first whole GET breaks off after this many bytes. */
  breakAt?: number;
}

describe('installArchive extracts a large zip while it arrives', () => {
  let parent: string;
  let server: Server;
  let url: string;
  let serving: Serving;
  let zip: Buffer;
  let wholeGets: number;
  let rangeGets: number;
  let release: () => void;

  function answer(request: IncomingMessage, response: ServerResponse): void {
    const suffix = /^bytes=-(\d+)$/.exec(request.headers.range ?? '');
    if (suffix) rangeGets += 1;
    if (suffix && serving.ranges) {
      const start = Math.max(0, zip.length - Number(suffix[1]));
      const bytes = zip.subarray(start);
      response.writeHead(206, {
        'content-length': String(bytes.length),
        'content-range': `bytes ${start}-${zip.length - 1}/${zip.length}`,
      });
      if (serving.tailHangs) {
        response.flushHeaders();
        return;
      }
      response.end(serving.tail ? serving.tail(Buffer.from(bytes)) : bytes);
      return;
    }
    // A range the server does not answer gets the whole object, as a GET without one.
    if (!suffix) wholeGets += 1;
    response.writeHead(200, { 'content-length': String(zip.length) });
    const first = !suffix && wholeGets === 1;
    if (first && serving.breakAt !== undefined) {
      response.write(zip.subarray(0, serving.breakAt), () => response.destroy());
      return;
    }
    if (first && serving.holdAt !== undefined) {
      const rest = zip.subarray(serving.holdAt);
      response.write(zip.subarray(0, serving.holdAt));
      release = () => response.end(rest);
      return;
    }
    response.end(zip);
  }

  /** The served zip installed into `task`, streamed from any size unless `options` say otherwise. */
  const install = (options: Partial<InstallOptions> = {}) =>
    installArchive({
      url,
      sha256: createHash('sha256').update(zip).digest('base64'),
      label: 'the code',
      root: join(parent, 'task'),
      maxBytes: 50 * 1024 * 1024,
      fetch: httpGet,
      sleep: async () => {},
      size: zip.length,
      extractWhileDownloadingFrom: 0,
      ...options,
    });

  beforeEach(async () => {
    parent = mkdtempSync(join(tmpdir(), 'arriving-'));
    wholeGets = 0;
    rangeGets = 0;
    release = () => {};
    serving = { ranges: true };
    server = createServer(answer);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/code.zip`;
  });

  afterEach(async () => {
    release();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(parent, { recursive: true, force: true });
  });

  it.each([
    ['writer threads', 600],
    ['the calling thread', 40],
  ])('writes files before the archive has arrived, on %s, and ends with every file', async (_how, count) => {
    // Prepare: the server stops halfway through the body until told to go on
    const sources = codeLike(count);
    zip = buildZip(sources);
    serving = { ranges: true, holdAt: Math.floor(zip.length / 2) };
    const first = join(parent, 'task', sources[0]?.name as string);

    // Act
    const installing = install();
    const deadline = Date.now() + 20_000;
    while (!existsSync(first) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const writtenWhileHeld = existsSync(first);
    release();
    const result = await installing;

    // Assess: the first file was written from the first half; the end came ahead, once
    expect(writtenWhileHeld).toBe(true);
    expect(result.files).toBe(count);
    expect(Object.keys(tree(join(parent, 'task')))).toHaveLength(count);
    expect(tree(join(parent, 'task'))['node_modules/pkg0/lib0/file0.js']).toBe(
      `755 ${'module.exports = 0;\n'.repeat(20)}`,
    );
    expect({ wholeGets, rangeGets }).toEqual({ wholeGets: 1, rangeGets: 1 });
  });

  it('refuses a zip that does not match its CodeSha256, without downloading it again', async () => {
    // Prepare
    zip = buildZip(codeLike(300));
    const sha256 = createHash('sha256').update(Buffer.from('another zip')).digest('base64');

    // Act
    const installing = install({ sha256 });

    // Assess
    await expect(installing).rejects.toThrow(CodeFetchError);
    await expect(installing).rejects.toThrow(/the code does not match its CodeSha256.*refusing to run it/);
    expect(wholeGets).toBe(1);
  });

  it('downloads again a zip whose download broke off during the extraction, and extracts it over what was written', async () => {
    // Prepare
    const sources = codeLike(600);
    zip = buildZip(sources);
    serving = { ranges: true, breakAt: Math.floor(zip.length / 2) };
    const progress: string[] = [];

    // Act
    const result = await install({ progress: (message) => progress.push(message) });

    // Assess
    expect(result.files).toBe(600);
    expect(Object.keys(tree(join(parent, 'task')))).toHaveLength(600);
    expect(progress).toContain('The download broke off during the extraction; downloading it again');
    expect(wholeGets).toBe(2);
  });

  it('downloads a zip under the size to stream from with one GET, and extracts it after', async () => {
    // Prepare
    zip = buildZip(codeLike(300));

    // Act
    const result = await install({ extractWhileDownloadingFrom: zip.length + 1 });

    // Assess
    expect(result.files).toBe(300);
    expect({ wholeGets, rangeGets }).toEqual({ wholeGets: 1, rangeGets: 0 });
  });

  it('extracts once the whole zip is here when the end fetched ahead never comes', async () => {
    // Prepare
    zip = buildZip(codeLike(300));
    serving = { ranges: true, tailHangs: true };

    // Act
    const result = await install();

    // Assess
    expect(result.files).toBe(300);
    expect(Object.keys(tree(join(parent, 'task')))).toHaveLength(300);
  });

  it('extracts once the whole zip is here when the server answers no ranges', async () => {
    // Prepare
    zip = buildZip(codeLike(300));
    serving = { ranges: false };

    // Act
    const result = await install();

    // Assess
    expect(result.files).toBe(300);
    expect(Object.keys(tree(join(parent, 'task')))).toHaveLength(300);
    expect({ wholeGets, rangeGets }).toEqual({ wholeGets: 1, rangeGets: 1 });
  });

  it.each([
    ['while the zip arrives', undefined],
    ['after its download broke off', 0.3],
  ])('refuses a zip whose end fetched ahead is not its own, %s', async (_when, breakAt) => {
    // Prepare: the range answers a name changed in the central directory
    zip = buildZip(codeLike(300));
    serving = {
      ranges: true,
      tail: (bytes) => {
        const at = bytes.lastIndexOf('file299.js');
        bytes.write('filE', at);
        return bytes;
      },
      ...(breakAt === undefined ? {} : { breakAt: Math.floor(zip.length * breakAt) }),
    };

    // Act
    const installing = install();

    // Assess
    await expect(installing).rejects.toThrow(CodeFetchError);
    await expect(installing).rejects.toThrow(
      /the end of the code fetched ahead with a range request differs from the downloaded archive/,
    );
  });
});
