// The hostile-input fuzz: envelopes, events and contexts, archives and settings, generated from a
// seed and pushed through the built packages. Prints what each input became; an input may be
// accepted or refused with the library's own error, never crash raw, lose an invocation or
// write outside its root. `pnpm --filter @immortal-lambda/examples bench` runs it.
import {
  existsSync,
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
import { ECSClient } from '@aws-sdk/client-ecs';
import {
  buildZip,
  handedOffEnvelope,
  LocalControlPlane,
  NoLauncher,
  type ZipSource,
} from '@immortal-lambda/local';
import { ConfigurationError, HandoffError, withFargateFallback } from '@immortal-lambda/middleware';
import { ENV, EnvelopeError, parseEnvelope } from '@immortal-lambda/middleware/protocol';
import { extractZip, RunnerError } from '@immortal-lambda/runner';
import fc from 'fast-check';

const seed = Number(process.env.FUZZ_SEED ?? 20261126);
const runs = Number(process.env.FUZZ_RUNS ?? 1);
const sample = <T>(arbitrary: fc.Arbitrary<T>, count: number, offset: number) =>
  fc.sample(arbitrary, { numRuns: Math.round(count * runs), seed: seed + offset });
type Counts = Record<string, number>;
const bump = (counts: Counts, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};
const rawKey = (error: unknown) => `RAW ${(error as Error)?.name ?? typeof error}`;

/** Envelopes: a valid one with one field replaced, removed, or the whole text cut. */
function fuzzEnvelopes(): Counts {
  const counts: Counts = {};
  const base = handedOffEnvelope({ functionName: 'report', event: { id: 1 } }) as unknown as Record<
    string,
    Record<string, unknown>
  >;
  const paths = [
    ['kind'],
    ['version'],
    ['event'],
    ['function', 'name'],
    ['function', 'version'],
    ['function', 'handler'],
    ['function', 'memoryLimitInMB'],
    ['invocation', 'awsRequestId'],
    ['invocation', 'invokedFunctionArn'],
    ['invocation', 'logGroupName'],
    ['invocation', 'identity'],
    ['invocation', 'startedAt'],
    ['invocation', 'handedOffAt'],
    ['invocation', 'deadlineAt'],
  ];
  const weird = fc.oneof(
    fc.anything(),
    fc.constantFrom(
      1e308,
      -1e308,
      8.64e15 + 1,
      -0,
      '',
      '../../x/evil.handler',
      '/abs.handler',
      'sub/../../../x.handler',
      [],
      {},
    ),
  );
  const mutation = fc.oneof(
    fc
      .tuple(fc.constantFrom(...paths), weird)
      .map(([path, value]) => ({ path, value, remove: false, cut: 0 })),
    fc.constantFrom(...paths).map((path) => ({ path, value: undefined, remove: true, cut: 0 })),
    fc
      .integer({ min: 1, max: 400 })
      .map((cut) => ({ path: [] as string[], value: undefined, remove: false, cut })),
  );
  for (const m of sample(mutation, 1_000, 1)) {
    const copy = JSON.parse(JSON.stringify(base)) as Record<string, Record<string, unknown>>;
    if (m.path.length === 1) {
      if (m.remove) delete copy[m.path[0] as string];
      else (copy as Record<string, unknown>)[m.path[0] as string] = m.value;
    } else if (m.path.length === 2) {
      const holder = copy[m.path[0] as string] as Record<string, unknown>;
      if (m.remove) delete holder[m.path[1] as string];
      else holder[m.path[1] as string] = m.value;
    }
    let text: string;
    try {
      text = JSON.stringify(copy) ?? 'undefined';
    } catch {
      text = '{"not": "serialisable"}';
    }
    if (m.cut > 0) text = text.slice(0, Math.max(0, text.length - m.cut));
    try {
      const envelope = parseEnvelope(text);
      const times = [
        envelope.invocation.startedAt,
        envelope.invocation.handedOffAt,
        envelope.invocation.deadlineAt,
      ];
      if (times.some((t) => Number.isNaN(new Date(t).getTime()))) bump(counts, 'ACCEPTED WITH A BAD TIME');
      else if (envelope.function.handler?.includes('..')) bump(counts, 'ACCEPTED AN ESCAPING HANDLER');
      else bump(counts, 'accepted');
    } catch (error) {
      bump(counts, error instanceof EnvelopeError ? 'refused (EnvelopeError)' : rawKey(error));
    }
  }
  return counts;
}

/** Events and contexts: handed off through the wrapper to a local plane, read back as the runner reads them. */
async function fuzzInvocations(): Promise<Counts> {
  const counts: Counts = {};
  const plane = new LocalControlPlane({ launcher: new NoLauncher() });
  await plane.start();
  try {
    const loose = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('', undefined, null, 7, ['x']));
    const input = fc.record({
      event: fc.oneof(
        fc.jsonValue(),
        fc.anything(),
        fc.constantFrom(undefined, Symbol('e'), () => 1, { toJSON: () => undefined }),
      ),
      awsRequestId: fc.oneof({ arbitrary: fc.uuid(), weight: 6 }, { arbitrary: loose, weight: 1 }),
      functionName: fc.oneof(
        { arbitrary: fc.constant('report-job'), weight: 6 },
        { arbitrary: loose, weight: 1 },
      ),
      logGroupName: loose,
      identity: fc.oneof(fc.constant(undefined), fc.anything()),
      clientContext: fc.oneof(fc.constant(undefined), fc.anything()),
      handler: fc.oneof(
        fc.constantFrom(undefined, '', 'index.handler', '../../x/evil.handler'),
        fc.string({ maxLength: 12 }),
      ),
    });
    const cases = sample(input, 300, 2);
    const ecsClient = new ECSClient({
      endpoint: plane.url,
      region: plane.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const handlers = new Map<string | undefined, ReturnType<typeof withFargateFallback>>();
    const handlerFor = (setting: string | undefined) => {
      let handler = handlers.get(setting);
      if (!handler) {
        handler = withFargateFallback(
          (_event: unknown, _context, { signal }) =>
            new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
          {
            env: { ...plane.environment(), AWS_LAMBDA_FUNCTION_VERSION: '1', _HANDLER: setting },
            marginMs: 1_000,
            logger: { info: () => {}, error: () => {} },
            ecsClient,
          },
        );
        handlers.set(setting, handler);
      }
      return handler;
    };
    for (let i = 0; i < cases.length; i += 25) {
      await Promise.all(
        cases.slice(i, i + 25).map(async (c, j) => {
          const deadline = Date.now() + 600;
          const context = {
            awsRequestId:
              typeof c.awsRequestId === 'string' && c.awsRequestId
                ? `${c.awsRequestId}-${i + j}`
                : c.awsRequestId,
            functionName: c.functionName,
            functionVersion: '1',
            invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job',
            memoryLimitInMB: '1024',
            logGroupName: c.logGroupName,
            logStreamName: 'fuzz',
            identity: c.identity,
            clientContext: c.clientContext,
            callbackWaitsForEmptyEventLoop: true,
            getRemainingTimeInMillis: () => deadline - Date.now(),
            done: () => undefined,
            fail: () => undefined,
            succeed: () => undefined,
          };
          try {
            const receipt = (await handlerFor(c.handler)(c.event, context as never)) as { taskArn: string };
            const task = plane.task(receipt.taskArn);
            try {
              parseEnvelope(task?.environment[ENV.envelope] ?? '');
              bump(counts, 'handed off, envelope read by the runner');
            } catch {
              bump(counts, 'LOST: handed off, envelope refused by the runner');
            }
          } catch (error) {
            bump(counts, error instanceof HandoffError ? `HandoffError ${error.reason}` : rawKey(error));
          }
        }),
      );
    }
  } finally {
    await plane.stop();
  }
  return counts;
}

/** Archives mixing folders, files and links with hostile names and targets, two layers deep. */
async function fuzzArchives(): Promise<Counts> {
  const counts: Counts = {};
  const part = fc.oneof(
    { arbitrary: fc.constantFrom('a', 'b', 'c', 'task', 'outside'), weight: 12 },
    { arbitrary: fc.constantFrom('..', '.', '', 'n'.repeat(300)), weight: 1 },
  );
  const name = fc.array(part, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
  const entry = fc.oneof(
    name.map((n): ZipSource => ({ name: `${n}/`, directory: true })),
    name.map((n): ZipSource => ({ name: n, data: `data ${n}` })),
    fc
      .tuple(
        name,
        fc.oneof(
          {
            arbitrary: fc
              .array(fc.constantFrom('a', 'b', 'c', '..', '.'), { minLength: 1, maxLength: 4 })
              .map((p) => p.join('/')),
            weight: 6,
          },
          { arbitrary: fc.constantFrom('/etc', '../..', '../outside/keep', '', 'a\0b'), weight: 1 },
        ),
      )
      .map(([n, target]): ZipSource => ({ name: n, symlink: target })),
  );
  const archives = sample(
    fc.tuple(fc.array(entry, { maxLength: 8 }), fc.array(entry, { maxLength: 8 })),
    300,
    3,
  );
  for (const layers of archives) {
    const parent = mkdtempSync(join(tmpdir(), 'fuzz-'));
    const root = join(parent, 'task');
    mkdirSync(join(parent, 'outside', 'keep'), { recursive: true });
    writeFileSync(join(parent, 'outside', 'keep', 'sentinel'), 'untouched');
    let outcome = 'extracted';
    for (const sources of layers) {
      try {
        await extractZip(buildZip(sources), { root, maxBytes: 1_000_000, label: 'fuzz' });
      } catch (error) {
        outcome = error instanceof RunnerError ? `refused (exit ${error.exitCode})` : rawKey(error);
        break;
      }
    }
    const intact =
      readdirSync(parent).every((n) => n === 'task' || n === 'outside') &&
      readdirSync(join(parent, 'outside')).join() === 'keep' &&
      readFileSync(join(parent, 'outside', 'keep', 'sentinel'), 'utf8') === 'untouched';
    let inside = true;
    if (existsSync(root)) {
      const realRoot = realpathSync(root);
      const walk = (folder: string) => {
        for (const n of readdirSync(folder, { withFileTypes: true })) {
          const path = join(folder, n.name);
          try {
            const real = realpathSync(path);
            if (real !== realRoot && !real.startsWith(realRoot + sep)) inside = false;
          } catch {
            // a dangling link leads nowhere
          }
          if (n.isDirectory()) walk(path);
        }
      };
      walk(root);
    }
    bump(counts, intact && inside ? outcome : 'ESCAPED THE ROOT');
    rmSync(parent, { recursive: true, force: true });
  }
  return counts;
}

/** Settings: option objects with real, misspelt and unknown names and values of every type. */
function fuzzSettings(): Counts {
  const counts: Counts = {};
  const names = fc.constantFrom(
    'cluster',
    'taskDefinition',
    'subnets',
    'securityGroups',
    'assignPublicIp',
    'capacity',
    'payloadBucket',
    'payloadPrefix',
    'marginMs',
    'disabled',
    'containerName',
    'handoffResponse',
    'logger',
    'marginMS',
    'cluser',
  );
  const value = fc.oneof(
    fc.anything(),
    fc.constantFrom(
      'true',
      'false',
      'no',
      '0x10',
      '2500',
      'jobs',
      'subnet-0aaaaaaaaaaaaaaa1',
      '192.168.5.4',
      'sthree-x',
    ),
  );
  const options = fc.oneof(fc.dictionary(names, value, { maxKeys: 5 }), fc.constantFrom(null, 7, 'jobs', []));
  const quiet = { info: () => {}, error: () => {}, warn: () => {} };
  // The environment sets every required setting: what a fuzzed option breaks shows alone.
  const env = {
    FARGATE_FALLBACK_CLUSTER: 'jobs',
    FARGATE_FALLBACK_TASK_DEFINITION: 'immortal-runner',
    FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
  };
  for (const given of sample(options, 500, 4)) {
    const withLogger =
      given !== null && typeof given === 'object' && !Array.isArray(given) && !('logger' in given)
        ? { env, ...given, logger: quiet }
        : given;
    try {
      withFargateFallback(async () => 1, withLogger as never);
      bump(counts, 'accepted');
    } catch (error) {
      bump(counts, error instanceof ConfigurationError ? 'refused (ConfigurationError)' : rawKey(error));
    }
  }
  return counts;
}

const print = (title: string, counts: Counts) => {
  console.log(`\n${title}`);
  console.log('| outcome | inputs |\n| --- | ---: |');
  for (const [key, count] of Object.entries(counts).sort()) console.log(`| ${key} | ${count} |`);
};

const started = Date.now();
console.log(`Hostile-input fuzz, seed ${seed}, Node ${process.version}`);
const sections: [string, Counts][] = [
  ['Envelopes (parseEnvelope)', fuzzEnvelopes()],
  ['Events and contexts (withFargateFallback → local plane → parseEnvelope)', await fuzzInvocations()],
  ['Archives (extractZip, two layers)', await fuzzArchives()],
  ['Settings (withFargateFallback options)', fuzzSettings()],
];
for (const [title, counts] of sections) print(title, counts);
const bad = sections.flatMap(([, counts]) =>
  Object.keys(counts).filter((key) => /^RAW|^LOST|ESCAPED|^ACCEPTED/.test(key)),
);
console.log(
  `\n${bad.length === 0 ? 'Target met' : 'TARGET MISSED'}: no raw error, no lost invocation, nothing outside the root (${Date.now() - started} ms)`,
);
if (bad.length > 0) process.exitCode = 1;
