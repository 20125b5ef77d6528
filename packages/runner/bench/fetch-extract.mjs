// One code fetch as the runner does it: download with the size cap, verify CodeSha256, extract
// safely into a fresh folder. Prints one JSON line: wall milliseconds (and each phase's) and peak RSS.
//   node bench/fetch-extract.mjs <url> <base64 sha256> <target dir>
import { downloadVerified, extractZip, httpGet, LAMBDA_UNZIPPED_LIMIT } from '@immortal-lambda/runner';

const [url, sha256, target] = process.argv.slice(2);
const started = performance.now();
const zip = await downloadVerified({
  url,
  sha256,
  label: 'bench',
  maxBytes: LAMBDA_UNZIPPED_LIMIT,
  fetch: httpGet,
});
const downloaded = performance.now();
const result = await extractZip(zip, { root: target, maxBytes: LAMBDA_UNZIPPED_LIMIT, label: 'bench' });
const done = performance.now();
console.log(
  JSON.stringify({
    ms: done - started,
    downloadMs: downloaded - started,
    extractMs: done - downloaded,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    files: result.files,
  }),
);
