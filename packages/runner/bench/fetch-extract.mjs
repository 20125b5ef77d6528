// One code fetch as the runner does it (installArchive): download with the size cap, verify
// CodeSha256, extract safely into a fresh folder, a large zip while it arrives. Prints one JSON
// line: wall milliseconds and peak RSS.
//   node bench/fetch-extract.mjs <url> <base64 sha256> <target dir> <zip bytes>
import { httpGet, installArchive, LAMBDA_UNZIPPED_LIMIT } from '@immortal-lambda/runner';

const [url, sha256, target, size] = process.argv.slice(2);
const started = performance.now();
const result = await installArchive({
  url,
  sha256,
  label: 'bench',
  root: target,
  maxBytes: LAMBDA_UNZIPPED_LIMIT,
  size: Number(size),
  fetch: httpGet,
  ...(process.env.BENCH_EXTRACT_AFTER ? { extractWhileDownloadingFrom: Number.POSITIVE_INFINITY } : {}),
});
const done = performance.now();
console.log(
  JSON.stringify({
    ms: done - started,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    files: result.files,
  }),
);
