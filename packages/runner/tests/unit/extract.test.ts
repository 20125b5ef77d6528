import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsafeArchiveError } from '../../src/errors.js';
import { extractZip } from '../../src/zip/extract.js';
import { buildZip } from '../helpers/zip-writer.js';

describe('extractZip', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'extract-'));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('extracts files, folders, modes and links that stay inside', async () => {
    // Prepare
    const zip = buildZip([
      { name: 'lib/', directory: true },
      { name: 'lib/a.js', data: 'a'.repeat(10_000) },
      { name: 'bin/run', data: '#!/bin/sh\n', mode: 0o755 },
      { name: 'stored.txt', data: 'stored', store: true },
      { name: 'current', symlink: 'lib' },
    ]);

    // Act
    const result = await extractZip(zip, { root, maxBytes: 1_000_000, label: 'test' });

    // Assess
    expect(result).toEqual({ files: 3, directories: 1, links: 1, bytes: 10_000 + 10 + 6 });
    expect(readFileSync(join(root, 'lib/a.js'), 'utf8')).toBe('a'.repeat(10_000));
    expect(statSync(join(root, 'bin/run')).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'lib/a.js')).mode & 0o777).toBe(0o644);
    expect(readlinkSync(join(root, 'current'))).toBe('lib');
    expect(readFileSync(join(root, 'current/a.js'), 'utf8')).toHaveLength(10_000);
  });

  it('streams an entry larger than 4 MiB to disk and checks it', async () => {
    // Prepare
    const large = Buffer.alloc(6 * 1024 * 1024, 7);
    const zip = buildZip([{ name: 'big.bin', data: large }]);

    // Act
    await extractZip(zip, { root, maxBytes: 10 * 1024 * 1024, label: 'test' });

    // Assess
    expect(readFileSync(join(root, 'big.bin')).equals(large)).toBe(true);
  });

  it('refuses a streamed entry that inflates past its declared size', async () => {
    // Prepare
    const zip = buildZip([
      { name: 'big.bin', data: Buffer.alloc(8 * 1024 * 1024), declaredSize: 5 * 1024 * 1024 },
    ]);

    // Act
    const extracting = extractZip(zip, { root, maxBytes: 100 * 1024 * 1024, label: 'test' });

    // Assess
    await expect(extracting).rejects.toBeInstanceOf(UnsafeArchiveError);
  });

  it('refuses to write into a folder that an earlier archive linked outside', async () => {
    // Prepare: a symlink already in the root (say, left by an earlier layer) points outside.
    const outside = mkdtempSync(join(tmpdir(), 'outside-'));
    const { symlinkSync } = await import('node:fs');
    symlinkSync(outside, join(root, 'shared'));

    // Act
    const extracting = extractZip(buildZip([{ name: 'shared/x.js', data: 'x' }]), {
      root,
      maxBytes: 100,
      label: 'layer',
    });

    // Assess
    await expect(extracting).rejects.toThrow(/leads outside/);
    expect(lstatSync(outside).isDirectory()).toBe(true);
    rmSync(outside, { recursive: true, force: true });
  });

  it('refuses a non-zip with a clear message', async () => {
    await expect(
      extractZip(Buffer.from('not a zip at all, really'), { root, maxBytes: 100, label: 'the code' }),
    ).rejects.toThrow(/corrupt or truncated/);
  });
});
