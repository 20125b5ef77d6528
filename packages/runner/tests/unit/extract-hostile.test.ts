import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunnerError, UnsafeArchiveError } from '../../src/errors.js';
import { EXIT_CODES } from '../../src/exit-codes.js';
import { extractZip } from '../../src/zip/extract.js';
import { buildZip, type ZipSource } from '../helpers/zip-writer.js';

/** A parent folder holding the root, a sibling with a sentinel, and a sibling-prefix folder. */
function makeSandbox() {
  const parent = mkdtempSync(join(tmpdir(), 'hostile-'));
  const root = join(parent, 'task');
  const outside = join(parent, 'outside');
  mkdirSync(join(outside, 'keep'), { recursive: true });
  writeFileSync(join(outside, 'keep', 'sentinel'), 'untouched');
  mkdirSync(join(parent, 'task2'));
  return { parent, root, outside };
}

/** Nothing beside the root changed, and everything under it really lies under it. */
function assertContained({ parent, root, outside }: ReturnType<typeof makeSandbox>) {
  expect(readdirSync(parent).sort()).toEqual(
    ['outside', 'task', 'task2'].filter((n) => existsSync(join(parent, n))),
  );
  expect(readdirSync(join(parent, 'task2'))).toEqual([]);
  expect(readdirSync(outside)).toEqual(['keep']);
  expect(lstatSync(join(outside, 'keep')).isDirectory()).toBe(true);
  expect(readFileSync(join(outside, 'keep', 'sentinel'), 'utf8')).toBe('untouched');
  if (!existsSync(root)) return;
  const realRoot = realpathSync(root);
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      let real: string | undefined;
      try {
        real = realpathSync(path);
      } catch {
        real = undefined; // a dangling link inside the root leads nowhere
      }
      if (real !== undefined) expect(real === realRoot || real.startsWith(realRoot + sep)).toBe(true);
      if (lstatSync(path).isDirectory()) walk(path);
    }
  };
  walk(root);
}

describe('extractZip keeps hostile archives inside the root', () => {
  let sandbox: ReturnType<typeof makeSandbox>;
  beforeEach(() => {
    sandbox = makeSandbox();
  });
  afterEach(() => {
    rmSync(sandbox.parent, { recursive: true, force: true });
  });

  const extract = (sources: ZipSource[]) =>
    extractZip(buildZip(sources), { root: sandbox.root, maxBytes: 1_000_000, label: 'the code' });

  it('refuses a link that looks inside but resolves outside through an earlier link', async () => {
    // Prepare: up -> the root itself; y -> up/../../outside lexically stays inside, really not.
    const sources: ZipSource[] = [
      { name: 'a/b/c/up', symlink: '../../..' },
      { name: 'y', symlink: 'a/b/c/up/../../outside' },
    ];

    // Act
    const extracting = extract(sources);

    // Assess
    await expect(extracting).rejects.toThrow(/link "y" -> "a\/b\/c\/up\/..\/..\/outside" resolves outside/);
    await expect(extracting).rejects.toMatchObject({ exitCode: EXIT_CODES.codeFetch });
    assertContained(sandbox);
  });

  it('creates nothing when a later entry makes the archive unsafe', async () => {
    // Prepare
    const sources: ZipSource[] = [
      { name: 'lib/', directory: true },
      { name: 'lib/a.js', data: 'a' },
      { name: 'esc', symlink: '../outside' },
    ];

    // Act
    const extracting = extract(sources);

    // Assess
    await expect(extracting).rejects.toBeInstanceOf(UnsafeArchiveError);
    expect(readdirSync(sandbox.root)).toEqual([]);
    assertContained(sandbox);
  });

  it('never removes what lies behind a link, even when a later entry names the link as a folder', async () => {
    // Prepare: the attack that once deleted a folder outside the root, reaching it through a chain.
    const sources: ZipSource[] = [
      { name: 'a/b/c/up', symlink: '../../..' },
      { name: 'y', symlink: 'a/b/c/up/../../outside' },
      { name: 'y/keep', data: 'replaced' },
    ];

    // Act
    const extracting = extract(sources);

    // Assess
    await expect(extracting).rejects.toBeInstanceOf(UnsafeArchiveError);
    assertContained(sandbox);
  });

  it('refuses a link loop with a code-fetch error, not a raw ELOOP', async () => {
    await expect(
      extract([
        { name: 'p', symlink: 'q/x' },
        { name: 'q', symlink: 'p/x' },
      ]),
    ).rejects.toThrow(/more than 40 links/);
  });

  it('refuses a name that is a file in one entry and a folder in another, naming both', async () => {
    await expect(
      extract([
        { name: 'lib', data: 'a file' },
        { name: 'lib/a.js', data: 'a' },
      ]),
    ).rejects.toThrow(/"lib" is a file in the archive, and "lib\/a.js" needs it to be a folder/);
    expect(readdirSync(sandbox.root)).toEqual([]);
  });

  it('refuses a duplicated entry name instead of keeping the last copy', async () => {
    await expect(
      extract([
        { name: 'index.js', data: 'first' },
        { name: './index.js', data: 'second' },
      ]),
    ).rejects.toThrow(/holds "index.js" twice/);
  });

  it.each([
    [
      'a name part longer than 255 bytes',
      { name: `${'n'.repeat(300)}.js`, data: 'x' },
      /name part of 303 bytes/,
    ],
    [
      'a link target longer than the file system allows',
      { name: 'l', symlink: 'a/'.repeat(2100) },
      /target longer/,
    ],
    ['an empty link target', { name: 'l', symlink: '' }, /empty target/],
    ['a NUL byte in a link target', { name: 'l', symlink: 'a\0b' }, /NUL byte in its target/],
  ])(
    'refuses %s as an archive problem (code-fetch exit code), naming the entry',
    async (_what, source, message) => {
      // Act
      const extracting = extract([source as ZipSource]);

      // Assess
      await expect(extracting).rejects.toThrow(message);
      await expect(extracting).rejects.toMatchObject({ exitCode: EXIT_CODES.codeFetch });
    },
  );

  it('refuses a zip64 field that lies past the end of its header', async () => {
    // Prepare: an entry whose size says "see zip64" and whose zip64 field is cut short.
    const zip = buildZip([{ name: 'a.txt', data: 'abc', store: true }]);
    const central = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    zip.writeUInt32LE(0xffffffff, central + 24);
    const withField = Buffer.concat([
      zip.subarray(0, central + 46 + 5),
      Buffer.from([0x01, 0x00, 0x08, 0x00, 0x01, 0x02]),
      zip.subarray(central + 46 + 5),
    ]);
    withField.writeUInt16LE(6, central + 30);
    const eocd = withField.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    withField.writeUInt32LE(withField.readUInt32LE(eocd + 12) + 6, eocd + 12);

    // Act
    const extracting = extractZip(withField, { root: sandbox.root, maxBytes: 100, label: 'the code' });

    // Assess
    await expect(extracting).rejects.toThrow(/runs past its header|past the end of its field/);
    await expect(extracting).rejects.toMatchObject({ exitCode: EXIT_CODES.codeFetch });
  });

  it('refuses a root that is a file as a setting problem, not a raw EEXIST', async () => {
    // Prepare
    writeFileSync(join(sandbox.parent, 'task'), 'a file');

    // Act
    const extracting = extract([{ name: 'a.js', data: 'a' }]);

    // Assess
    await expect(extracting).rejects.toThrow(/is not a folder/);
    await expect(extracting).rejects.toMatchObject({ exitCode: EXIT_CODES.badInput });
    rmSync(join(sandbox.parent, 'task'));
  });

  it('keeps links that stay inside, also through a chain, and absolute links into the root', async () => {
    // Act
    await extract([
      { name: 'lib/deep/file.js', data: 'x' },
      { name: 'a/up', symlink: '..' },
      { name: 'via', symlink: 'a/up/lib/deep' },
      { name: 'abs', symlink: join(sandbox.root, 'lib') },
    ]);

    // Assess
    expect(readFileSync(join(sandbox.root, 'via', 'file.js'), 'utf8')).toBe('x');
    expect(readFileSync(join(sandbox.root, 'abs', 'deep', 'file.js'), 'utf8')).toBe('x');
    assertContained(sandbox);
  });

  it('follows the links of an earlier layer when checking a later one', async () => {
    // Prepare: the first layer leaves a link to the root; the second climbs out through it.
    await extract([{ name: 'nodejs/top', symlink: '..' }]);

    // Act
    const extracting = extract([{ name: 'x', symlink: 'nodejs/top/../outside' }]);

    // Assess
    await expect(extracting).rejects.toThrow(/resolves outside/);
    assertContained(sandbox);
  });
});

describe('extractZip, property: whatever the archive, nothing lands outside the root', () => {
  const part = fc.constantFrom('a', 'b', 'c', 'task', 'outside', '..', '.');
  const relativePath = fc.array(part, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
  const entry = fc.oneof(
    relativePath.map((name): ZipSource => ({ name: `${name}/`, directory: true })),
    relativePath.map((name): ZipSource => ({ name, data: `data of ${name}` })),
    fc
      .tuple(
        relativePath,
        fc.oneof(relativePath, fc.constantFrom('/etc', '/tmp', '../..', '../outside/keep')),
      )
      .map(([name, target]): ZipSource => ({ name, symlink: target })),
  );
  const archive = fc.array(entry, { minLength: 1, maxLength: 8 });

  /** Two archives extracted one over the other: each lands inside the root or is refused with exit 3. */
  const overTwoLayers = (threads: number) =>
    fc.asyncProperty(archive, archive, async (first, second) => {
      const sandbox = makeSandbox();
      try {
        for (const sources of [first, second]) {
          const extracting = extractZip(buildZip(sources), {
            root: sandbox.root,
            maxBytes: 100_000,
            label: 'layer',
            threads,
          });
          await extracting.catch((error: unknown) => {
            expect(error).toBeInstanceOf(RunnerError);
            expect((error as RunnerError).exitCode).toBe(EXIT_CODES.codeFetch);
          });
          assertContained(sandbox);
        }
      } finally {
        rmSync(sandbox.parent, { recursive: true, force: true });
      }
    });

  it('either extracts inside the root or refuses with a runner error, over two layers', async () => {
    await fc.assert(overTwoLayers(1), { numRuns: 300 });
  });

  it('holds the same when writer threads write the files', async () => {
    await fc.assert(overTwoLayers(2), { numRuns: 40 });
  });
});
