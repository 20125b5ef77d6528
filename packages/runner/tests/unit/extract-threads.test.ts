import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsafeArchiveError } from '../../src/errors.js';
import { extractZip } from '../../src/zip/extract.js';
import { writerThreads } from '../../src/zip/writer-threads.js';
import { buildZip, type ZipSource } from '../helpers/zip-writer.js';

/** A function's code in small: files over several folders, executables, stored and deflated entries. */
function codeLike(count: number): ZipSource[] {
  const sources: ZipSource[] = [];
  for (let i = 0; i < count; i++) {
    sources.push({
      name: `node_modules/pkg${i % 7}/lib${i % 3}/file${i}.js`,
      data: `module.exports = ${i};\n`.repeat(1 + (i % 40)),
      ...(i % 11 === 0 ? { mode: 0o755 } : {}),
      ...(i % 5 === 0 ? { store: true } : {}),
    });
  }
  return sources;
}

/** Every file under `root` with its content and mode, by path. */
function tree(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const path = join(root, name);
    if (!lstatSync(path).isFile()) continue;
    files[name] = `${(statSync(path).mode & 0o777).toString(8)} ${readFileSync(path, 'utf8')}`;
  }
  return files;
}

/** Flips one byte of a stored entry's data, so that its CRC-32 no longer matches. */
function corrupt(zip: Buffer, content: string): Buffer {
  const at = zip.indexOf(content);
  if (at < 0) throw new Error(`"${content}" is not stored in the archive`);
  const broken = Buffer.from(zip);
  broken[at] = (broken[at] as number) ^ 0xff;
  return broken;
}

describe('extractZip with writer threads', () => {
  let parent: string;
  beforeEach(() => {
    parent = mkdtempSync(join(tmpdir(), 'extract-threads-'));
  });
  afterEach(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  it('writes the same files, contents and modes as the calling thread alone', async () => {
    // Prepare
    const zip = buildZip(codeLike(300));
    const alone = join(parent, 'alone');
    const threaded = join(parent, 'threaded');

    // Act
    const one = await extractZip(zip, { root: alone, maxBytes: 10_000_000, label: 'the code', threads: 1 });
    const three = await extractZip(zip, {
      root: threaded,
      maxBytes: 10_000_000,
      label: 'the code',
      threads: 3,
    });

    // Assess
    expect(three).toEqual(one);
    expect(one.files).toBe(300);
    const written = tree(threaded);
    expect(Object.keys(written)).toHaveLength(300);
    expect(written).toEqual(tree(alone));
    expect(written['node_modules/pkg0/lib0/file0.js']).toBe(`755 ${'module.exports = 0;\n'}`);
  });

  it('reads an archive that lies at an offset in shared memory, as the download leaves it', async () => {
    // Prepare: the archive at an offset inside a larger SharedArrayBuffer.
    const zip = buildZip(codeLike(40));
    const shared = Buffer.from(new SharedArrayBuffer(zip.length + 100), 100, zip.length);
    zip.copy(shared);
    const root = join(parent, 'root');

    // Act
    const result = await extractZip(shared, { root, maxBytes: 1_000_000, label: 'the code', threads: 2 });

    // Assess
    expect(result.files).toBe(40);
    expect(readFileSync(join(root, 'node_modules/pkg1/lib1/file1.js'), 'utf8')).toBe(
      'module.exports = 1;\n'.repeat(2),
    );
  });

  it('refuses a file whose CRC-32 does not match, naming it', async () => {
    // Prepare
    const sources = codeLike(60);
    sources.push({ name: 'broken.js', data: 'the stored bytes of broken.js', store: true });
    const zip = corrupt(buildZip(sources), 'the stored bytes of broken.js');

    // Act
    const extracting = extractZip(zip, {
      root: join(parent, 'root'),
      maxBytes: 1_000_000,
      label: 'the code',
      threads: 2,
    });

    // Assess
    await expect(extracting).rejects.toBeInstanceOf(UnsafeArchiveError);
    await expect(extracting).rejects.toThrow(
      'the code: "broken.js" fails its size or CRC-32 check; the archive is corrupt',
    );
  });

  it('stops the threads and reports a large streamed entry that inflates past its size', async () => {
    // Prepare: many small files for the threads, one large entry for the calling thread.
    const sources = codeLike(200);
    sources.push({ name: 'big.bin', data: Buffer.alloc(8 * 1024 * 1024), declaredSize: 5 * 1024 * 1024 });
    const zip = buildZip(sources);

    // Act
    const extracting = extractZip(zip, {
      root: join(parent, 'root'),
      maxBytes: 100 * 1024 * 1024,
      label: 'the code',
      threads: 2,
    });

    // Assess
    await expect(extracting).rejects.toThrow('the code: "big.bin" inflates past its declared 5242880 bytes');
  });

  it('writes a large entry beside the threads', async () => {
    // Prepare
    const large = Buffer.alloc(6 * 1024 * 1024, 7);
    const sources = codeLike(100);
    sources.push({ name: 'assets/model.bin', data: large });
    const root = join(parent, 'root');

    // Act
    const result = await extractZip(buildZip(sources), {
      root,
      maxBytes: 100_000_000,
      label: 'the code',
      threads: 2,
    });

    // Assess
    expect(result.files).toBe(101);
    expect(readFileSync(join(root, 'assets/model.bin')).equals(large)).toBe(true);
  });

  it('replaces, never writes through, a link an earlier layer left where a file goes', async () => {
    // Prepare: the root holds a link to a file outside, at the path of one of the archive's files.
    const outside = join(parent, 'outside.txt');
    writeFileSync(outside, 'untouched');
    const root = join(parent, 'opt');
    mkdirSync(join(root, 'node_modules/pkg3/lib0'), { recursive: true });
    symlinkSync(outside, join(root, 'node_modules/pkg3/lib0/file3.js'));

    // Act
    await extractZip(buildZip(codeLike(50)), { root, maxBytes: 1_000_000, label: 'layer', threads: 2 });

    // Assess
    expect(readFileSync(outside, 'utf8')).toBe('untouched');
    const replaced = join(root, 'node_modules/pkg3/lib0/file3.js');
    expect(lstatSync(replaced).isFile()).toBe(true);
    expect(readFileSync(replaced, 'utf8')).toBe('module.exports = 3;\n'.repeat(4));
  });

  it('says which entry the file system refuses, by name', async () => {
    // Prepare: a name within Linux's limits whose path under the root is not (ENAMETOOLONG).
    const folder = Array.from({ length: 15 }, (_, i) => String(i).padEnd(255, 'x')).join('/');
    const name = `${folder}/${'f'.repeat(230)}`;
    const sources = codeLike(20);
    sources.push({ name, data: 'too deep' });

    // Act
    const extracting = extractZip(buildZip(sources), {
      root: join(parent, 'root'),
      maxBytes: 1_000_000,
      label: 'the code',
      threads: 2,
    });

    // Assess
    await expect(extracting).rejects.toThrow(
      `the code: entry "${name}" cannot be extracted: its name is too long for the file system`,
    );
  });
});

describe('writerThreads', () => {
  it('uses the calling thread alone for a small archive, else one thread per core from two to four', () => {
    expect(writerThreads(255, 8)).toBe(1);
    expect(writerThreads(256, 1)).toBe(2);
    expect(writerThreads(5_000, 2)).toBe(2);
    expect(writerThreads(5_000, 3)).toBe(3);
    expect(writerThreads(5_000, 16)).toBe(4);
  });
});
