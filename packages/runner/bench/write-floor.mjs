// The file system's floor for an extraction: the archive's files, already inflated and in memory,
// written one writeFileSync each into a fresh folder (no download, no checks, no inflating).
// Prints one JSON line with the wall milliseconds of the writes.
//   node bench/write-floor.mjs <folder with the files> <target dir>
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const [source, target] = process.argv.slice(2);
const files = readdirSync(source, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    return { name: relative(source, path), data: readFileSync(path) };
  });
const started = performance.now();
for (const file of files) {
  const path = join(target, file.name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, file.data, { flag: 'wx' });
}
console.log(JSON.stringify({ ms: performance.now() - started, files: files.length }));
