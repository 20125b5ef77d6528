// `pnpm bench`: the runner's figures beside their baselines, measured in the same run.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
// The loopback server lives in this process: children must run without blocking its event loop.
const run = promisify(execFile);
// The runner image runs the standalone build (its SDK clients bundled in); the package's own bin
// loads the SDK from node_modules. Both are measured; the target is the image's.
const entries = [
  {
    name: 'runner image entry (dist/standalone/cli.js)',
    path: join(here, '..', 'dist', 'standalone', 'cli.js'),
  },
  { name: 'package bin (dist/cli.js, SDK from node_modules)', path: join(here, '..', 'dist', 'cli.js') },
];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
// Lambda and Fargate have no NODE_EXTRA_CA_CERTS; on these machines it slows every Node 20 start.
delete env.NODE_EXTRA_CA_CERTS;
// A task's storage is fresh: Fargate gives each task a volume of its own. Where this process may
// (root, loop devices, mkfs.ext4), the code fetch writes on a new ext4 file system made for the run.
// Else, or with BENCH_STORAGE=tmp, it writes in the temp folder, on this machine's used disk, where
// the files an earlier run removed make file creation several times slower for a minute or more
// (measured: 3.4 GB removed, then 5,000 files written in 1.3–1.4 s instead of 0.7 s for 25 s).
const cleanedAtFile = join(tmpdir(), 'immortal-runner-bench-cleaned-at');
const storage = process.env.BENCH_STORAGE === 'tmp' ? undefined : freshFileSystem();
if (storage === undefined) {
  const sinceCleaned =
    Date.now() - Number(existsSync(cleanedAtFile) ? readFileSync(cleanedAtFile, 'utf8') : 0);
  if (sinceCleaned < 65_000) {
    console.log(
      `(waiting ${Math.ceil((65_000 - sinceCleaned) / 1000)} s for the last run's removals to age)`,
    );
    await new Promise((resolve) => setTimeout(resolve, 65_000 - sinceCleaned));
  }
}
const scratch = mkdtempSync(join(tmpdir(), 'runner-bench-'));
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
/** Where the code fetch's rounds write. */
const fetchRoot = storage?.folder ?? scratch;

console.log(`immortal-lambda runner benchmarks — Node ${process.version}, ${new Date().toISOString()}\n`);

// A function zip like a real one: 5,000 files, partly incompressible, over 50 MB zipped.
const source = join(scratch, 'source');
for (let i = 0; i < 5_000; i++) {
  const folder = join(source, `pkg${i % 50}`, `lib${i % 7}`);
  mkdirSync(folder, { recursive: true });
  const text = `module.exports = function f${i}(x) { return x * ${i}; };\n`.repeat(600);
  writeFileSync(join(folder, `file${i}.js`), Buffer.concat([randomBytes(10_500), Buffer.from(text)]));
}
const zipPath = join(scratch, 'code.zip');
execFileSync('zip', ['-q', '-r', '-X', zipPath, '.'], { cwd: source });
const zip = readFileSync(zipPath);
const sha256 = createHash('sha256').update(zip).digest('base64');
const unpacked = Number(
  execFileSync('unzip', ['-Zt', zipPath], { encoding: 'utf8' }).match(/(\d+) bytes uncompressed/)?.[1],
);

const server = createServer((request, response) => {
  if (request.url === '/code.zip' || request.url === '/code-at-90.zip') {
    serveZip(request, response, request.url === '/code.zip' ? undefined : 90);
    return;
  }
  handleLambda(request, response);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

/**
 * Answers the zip as S3 answers a presigned GET: the object, or the one range asked for; at most
 * `mbPerSecond` when given (S3's performance guidelines plan one connection per 85–90 MB/s).
 */
async function serveZip(request, response, mbPerSecond) {
  const suffix = /^bytes=-(\d+)$/.exec(request.headers.range ?? '');
  const start = suffix ? Math.max(0, zip.length - Number(suffix[1])) : 0;
  response.writeHead(suffix ? 206 : 200, {
    'content-type': 'application/zip',
    'content-length': String(zip.length - start),
    ...(suffix ? { 'content-range': `bytes ${start}-${zip.length - 1}/${zip.length}` } : {}),
  });
  const body = zip.subarray(start);
  if (mbPerSecond === undefined) {
    response.end(body);
    return;
  }
  const began = performance.now();
  const step = 256 * 1024;
  for (let at = 0; at < body.length; at += step) {
    response.write(body.subarray(at, at + step));
    const due = began + ((at + step) / (mbPerSecond * 1024 * 1024)) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
  }
  response.end();
}
const base = `http://127.0.0.1:${server.address().port}`;

// 1. Code fetch.
const ours = [];
const oursRss = [];
const after = [];
const at90 = [];
const after90 = [];
const baseline = [];
// Each fetch starts with the disk's write-back done (`sync`): otherwise the pages an earlier round
// wrote are flushed during the next one, and whichever method runs then pays for them.
const settle = () => execFileSync('sync');
// Nothing written is removed before the end (a few GB): ext4 without a journal, as on these
// machines, passes over every inode freed in the last minute each time it creates a file, which
// made file creation after a removed round several times slower for both methods. A task's
// storage is fresh: no round pays for an earlier one.
/**
 * One runner code fetch into `target`; `extractAfter`: the zip extracted after its download;
 * `path`: the zip's URL path on the loopback server.
 */
const fetchOnce = async (target, extractAfter, path = '/code.zip') => {
  settle();
  const { stdout } = await run(
    process.execPath,
    [join(here, 'fetch-extract.mjs'), `${base}${path}`, sha256, target, String(zip.length)],
    { env: extractAfter ? { ...env, BENCH_EXTRACT_AFTER: '1' } : env },
  );
  return JSON.parse(stdout);
};
for (let round = 0; round < rounds; round++) {
  const result = await fetchOnce(join(fetchRoot, `ours-${round}`), false);
  ours.push(result.ms);
  oursRss.push(result.maxRssMiB);
  after.push((await fetchOnce(join(fetchRoot, `after-${round}`), true)).ms);
  at90.push((await fetchOnce(join(fetchRoot, `at90-${round}`), false, '/code-at-90.zip')).ms);
  after90.push((await fetchOnce(join(fetchRoot, `after90-${round}`), true, '/code-at-90.zip')).ms);
  const reference = join(fetchRoot, `reference-${round}`);
  settle();
  const started = performance.now();
  await run('sh', [
    '-c',
    `curl -s -o "${reference}.zip" "${base}/code.zip" && unzip -q "${reference}.zip" -d "${reference}"`,
  ]);
  baseline.push(performance.now() - started);
}
// The file system's own cost, measured in the same run: the files written from memory, nothing else.
const floor = [];
for (let round = 0; round < rounds; round++) {
  const target = join(fetchRoot, `floor-${round}`);
  settle();
  const { stdout } = await run(process.execPath, [join(here, 'write-floor.mjs'), source, target], { env });
  floor.push(JSON.parse(stdout).ms);
}
const ratio = median(ours) / median(baseline);
console.log(
  `Code fetch: ${fmt(zip.length / 1024 / 1024, 1)} MB zip, 5,000 files, ${fmt(unpacked / 1024 / 1024, 0)} MB unpacked, from a loopback HTTP server (median of ${rounds}), written on ${storage === undefined ? `the machine's disk (${tmpdir()})` : 'a new ext4 file system (loop device)'}`,
);
console.log('| method | ms | ratio | peak RSS |');
console.log('| --- | ---: | ---: | ---: |');
console.log(`| curl -o + unzip -q (baseline) | ${fmt(median(baseline))} | 1.00 | — |`);
console.log(
  `| immortal-runner (download, SHA-256, checked extract while the zip arrives) | ${fmt(median(ours))} | ${fmt(ratio, 2)} | ${fmt(Math.max(...oursRss))} MiB |`,
);
console.log(
  `| the same, extracting after the download | ${fmt(median(after))} | ${fmt(median(after) / median(baseline), 2)} | — |`,
);
console.log(
  `| the same zip sent at 90 MB/s, as one S3 connection: extracted while it arrives | ${fmt(median(at90))} | — | — |`,
);
console.log(`| the same at 90 MB/s, extracting after the download | ${fmt(median(after90))} | — | — |`);
console.log(
  `| the files' writes alone, from memory, on one thread | ${fmt(median(floor))} | ${fmt(median(floor) / median(baseline), 2)} | — |`,
);
console.log(
  `Target: at most 0.75× the baseline and under 256 MB → ${fmt(ratio, 2)}×, ${fmt(Math.max(...oursRss))} MiB: ${
    ratio <= 0.75 && Math.max(...oursRss) < 256 ? 'met' : 'NOT MET'
  }\n`,
);

// 2. Start-up: process start to the handler being called, for a small function.
const small = join(scratch, 'small');
mkdirSync(small);
writeFileSync(
  join(small, 'index.js'),
  'exports.handler = async () => { console.log(JSON.stringify({ calledAt: performance.timeOrigin + performance.now() })); return 1; };\n',
);
execFileSync('zip', ['-q', '-r', '-X', join(scratch, 'small.zip'), '.'], { cwd: small });
const smallZip = readFileSync(join(scratch, 'small.zip'));
function handleLambda(request, response) {
  if (request.url === '/small.zip') {
    response.writeHead(200, { 'content-length': String(smallZip.length) });
    response.end(smallZip);
    return;
  }
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(
    JSON.stringify({
      Configuration: {
        FunctionName: 'small',
        // The runtime of the Node running the bench: the runner refuses a mismatch.
        Runtime: `nodejs${process.versions.node.split('.')[0]}.x`,
        Handler: 'index.handler',
        CodeSha256: createHash('sha256').update(smallZip).digest('base64'),
        CodeSize: smallZip.length,
        PackageType: 'Zip',
      },
      Code: { Location: `${base}/small.zip` },
    }),
  );
}
const envelope = JSON.stringify({
  kind: 'immortal-lambda.envelope',
  version: 1,
  function: {
    name: 'small',
    version: '1',
    handler: 'index.handler',
    memoryLimitInMB: 128,
    region: 'eu-west-1',
  },
  invocation: {
    awsRequestId: 'bench',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:small',
    logGroupName: 'g',
    logStreamName: 's',
    startedAt: 0,
    deadlineAt: 0,
    handedOffAt: 0,
  },
  event: {},
});
const startRuns = Number(process.env.BENCH_STARTS ?? 20);
const bare = [];
const runner = entries.map(() => []);
/** Spawns one runner and resolves with the milliseconds from the spawn to its handler's call. */
const timeToHandler = (cli, root) =>
  new Promise((resolve, reject) => {
    const started = performance.timeOrigin + performance.now();
    const child = spawn(process.execPath, [cli], {
      env: {
        ...env,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'bench',
        AWS_SECRET_ACCESS_KEY: 'bench',
        AWS_ENDPOINT_URL_LAMBDA: base,
        FARGATE_FALLBACK_ENVELOPE: envelope,
        FARGATE_FALLBACK_TASK_ROOT: join(root, 'task'),
        FARGATE_FALLBACK_LAYERS_ROOT: join(root, 'opt'),
      },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.includes('calledAt'));
      if (code !== 0 || !line) reject(new Error(`runner exited ${code}: ${out}`));
      else resolve(JSON.parse(line).calledAt - started);
    });
  });
// The code fetch above left hundreds of MB to write back: done first, as before each fetch.
settle();
for (let i = 0; i < startRuns; i++) {
  const began = performance.timeOrigin + performance.now();
  await run(process.execPath, ['-e', ''], { env });
  bare.push(performance.timeOrigin + performance.now() - began);
  for (const [k, entry] of entries.entries()) {
    const root = join(scratch, `start-${i}-${k}`);
    runner[k].push(await timeToHandler(entry.path, root));
    rmSync(root, { recursive: true, force: true });
  }
}
const added = runner.map((times) => median(times) - median(bare));
console.log(
  `Start-up: process start → handler called, small function: GetFunction, download, extract, import on loopback (median of ${startRuns}, NODE_EXTRA_CA_CERTS unset)`,
);
console.log('| process | ms | added |');
console.log('| --- | ---: | ---: |');
console.log(`| node -e "" (baseline, to exit) | ${fmt(median(bare), 1)} | — |`);
for (const [k, entry] of entries.entries()) {
  console.log(`| ${entry.name} | ${fmt(median(runner[k]), 1)} | +${fmt(added[k], 1)} |`);
}
console.log(
  `Target: the image's runner adds at most 150 ms → +${fmt(added[0], 1)} ms: ${added[0] <= 150 ? 'met' : 'NOT MET'}`,
);

// 3. The journal in the runner: what persisting one step costs at loopback (a PutObject to the
// local S3), against a bare PutObject of the same JSON through the same client, and how many
// writes 1,000 steps over 3 seconds make (at most one a second, and one at the end).
{
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const { startS3 } = await import('@immortal-lambda/local');
  const { PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
  const { JournalStore } = await import(join(here, '..', 'dist', 'index.js'));
  const s3 = await startS3({ bucket: 'bench-journal' });
  const client = new S3Client({
    region: 'eu-west-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  const envelope = { function: { name: 'report' }, invocation: { awsRequestId: 'bench' } };
  let writes = 0;
  const counting = {
    send: (command) => {
      writes++;
      return client.send(command);
    },
  };
  const store = (s3Client) =>
    new JournalStore({
      envelope,
      bucket: 'bench-journal',
      prefix: 'immortal-lambda/outcomes/',
      s3: () => s3Client,
      now: Date.now,
      log: () => undefined,
      timers: { set: setTimeout, clear: clearTimeout },
    });
  const journal = {
    steps: Object.fromEntries(
      Array.from({ length: 50 }, (_, i) => [`page-${i}`, { result: { rows: i * 100 } }]),
    ),
  };
  const body = JSON.stringify(journal);
  const samples = Number(process.env.BENCH_WRITES ?? 60);
  const bare = [];
  const ours = [];
  for (let i = 0; i < samples; i++) {
    let start = process.hrtime.bigint();
    await client.send(new PutObjectCommand({ Bucket: 'bench-journal', Key: 'bare.json', Body: body }));
    bare.push(Number(process.hrtime.bigint() - start) / 1e6);
    const one = store(client);
    start = process.hrtime.bigint();
    one.save(journal);
    await one.flush();
    ours.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const batched = store(counting);
  const steps = { steps: {} };
  const began = Date.now();
  for (let i = 0; i < 1_000; i++) {
    steps.steps[`s${i}`] = { result: i };
    batched.save({ steps: { ...steps.steps } });
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  await batched.flush();
  const spanS = (Date.now() - began) / 1000;
  await s3.stop();
  console.log(
    `\nJournal persistence in the runner, local S3 on loopback (median of ${samples}; ${fmt(body.length)}-byte journal)`,
  );
  console.log('| write | ms |');
  console.log('| --- | ---: |');
  console.log(`| PutObject of the same JSON (baseline) | ${fmt(median(bare), 2)} |`);
  console.log(
    `| JournalStore save + flush | ${fmt(median(ours), 2)} (${fmt(median(ours) / median(bare), 2)}× the PutObject) |`,
  );
  console.log(
    `1,000 steps over ${fmt(spanS, 1)} s made ${writes} writes (target: at most one a second plus the last → ≤ ${Math.ceil(spanS) + 1}: ${writes <= Math.ceil(spanS) + 1 ? 'met' : 'NOT MET'})`,
  );
}

server.close();
storage?.remove();
rmSync(scratch, { recursive: true, force: true });
writeFileSync(cleanedAtFile, String(Date.now()));

/**
 * A new ext4 file system on a loop device, mounted for this run, or undefined where this process
 * cannot make one (not root, no loop devices, no mkfs.ext4): the bench then says so and writes in
 * the temp folder.
 */
function freshFileSystem() {
  const image = join(tmpdir(), `runner-bench-${process.pid}.img`);
  const folder = mkdtempSync(join(tmpdir(), 'runner-bench-fs-'));
  try {
    if (process.getuid?.() !== 0) throw new Error('not root');
    // Sparse: blocks are taken only as the rounds write (about 7 GB of the 12).
    execFileSync('truncate', ['-s', '12G', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    execFileSync('mount', ['-o', 'loop', image, folder]);
  } catch (error) {
    rmSync(image, { force: true });
    rmSync(folder, { recursive: true, force: true });
    console.log(
      `(no new file system for the code fetch: ${error.message.split('\n')[0]}; writing in the temp folder)`,
    );
    return undefined;
  }
  let mounted = true;
  const remove = () => {
    if (!mounted) return;
    mounted = false;
    execFileSync('umount', [folder]);
    rmSync(image, { force: true });
    rmSync(folder, { recursive: true, force: true });
  };
  // Unmounted however the run ends.
  process.once('exit', remove);
  return { folder, remove };
}
