#!/usr/bin/env node
// immortal-local: the local control plane as a standalone process.
import { parseArgs } from 'node:util';
import { LocalPlaneError } from './errors.js';
import { PodmanLauncher, ProcessLauncher } from './launcher.js';
import { LocalControlPlane } from './plane.js';
import { type LocalS3, startS3 } from './s3.js';

const usage = `Usage: immortal-local [options]

Serves the ECS and Lambda APIs that immortal-lambda uses on loopback, with an S3 emulator for
spilled envelopes, and runs handed-off invocations with the runner.

  --port <n>                     port of the control plane (default 4566)
  --function <name>=<dir>:<handler>
                                 register a function from a folder, e.g. report=dist/report:index.handler
  --layer <name>=<dir>           register a layer (before the functions that use it)
  --use-layer <function>=<name>  attach a registered layer to a function
  --env <name>=<KEY>=<VALUE>     a variable of a function's configuration
  --bucket <name>                S3 bucket for spilled envelopes (default immortal-envelopes)
  --image <name>                 run tasks from this runner image with podman instead of a local process
  --runner <path>                the runner CLI to run tasks with (default: the installed @immortal-lambda/runner)
  --help                         this text
`;

function fail(message: string): never {
  process.stderr.write(`immortal-local: ${message}\n`);
  process.exit(2);
}

let parsed: ReturnType<typeof parseArgs>;
try {
  parsed = parseArgs({
    options: {
      port: { type: 'string', default: '4566' },
      function: { type: 'string', multiple: true, default: [] },
      layer: { type: 'string', multiple: true, default: [] },
      'use-layer': { type: 'string', multiple: true, default: [] },
      env: { type: 'string', multiple: true, default: [] },
      bucket: { type: 'string', default: 'immortal-envelopes' },
      image: { type: 'string' },
      runner: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
} catch (error) {
  fail(`${(error as Error).message}\n\n${usage}`);
}
const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${values.port} is not a port number`);

let s3: LocalS3 | undefined;
let plane: LocalControlPlane | undefined;
try {
  s3 = await startS3({ bucket: String(values.bucket) });
  plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    launcher:
      typeof values.image === 'string'
        ? new PodmanLauncher(values.image)
        : new ProcessLauncher(typeof values.runner === 'string' ? { cli: values.runner } : {}),
  });
  const layers = new Map<string, string>();
  for (const spec of values.layer as string[]) {
    const [name, folder] = spec.split(/=(.*)/s);
    if (!name || !folder) fail(`--layer "${spec}" is not <name>=<dir>`);
    layers.set(name, plane.registerLayer(name, folder));
  }
  const uses = new Map<string, string[]>();
  for (const spec of values['use-layer'] as string[]) {
    const [fn, layer] = spec.split('=');
    const arn = layer ? layers.get(layer) : undefined;
    if (!fn || !arn) fail(`--use-layer "${spec}" does not name a function and a registered --layer`);
    uses.set(fn, [...(uses.get(fn) ?? []), arn]);
  }
  const environments = new Map<string, Record<string, string>>();
  for (const spec of values.env as string[]) {
    const match = /^([^=]+)=([^=]+)=(.*)$/s.exec(spec);
    if (!match) fail(`--env "${spec}" is not <function>=<KEY>=<VALUE>`);
    const [, fn, key, value] = match as unknown as [string, string, string, string];
    environments.set(fn, { ...environments.get(fn), [key]: value });
  }
  if ((values.function as string[]).length === 0) fail(`register at least one --function\n\n${usage}`);
  for (const spec of values.function as string[]) {
    const match = /^([A-Za-z0-9_-]+)=(.+):([^:]+)$/.exec(spec);
    if (!match)
      fail(`--function "${spec}" is not <name>=<dir>:<handler>, e.g. report=dist/report:index.handler`);
    const [, name, folder, handler] = match as unknown as [string, string, string, string];
    plane.registerFunction({
      name,
      folder,
      handler,
      environment: environments.get(name) ?? {},
      layers: uses.get(name) ?? [],
    });
  }
  await plane.start({ port });
} catch (error) {
  await s3?.stop();
  if (error instanceof LocalPlaneError) fail(error.message);
  throw error;
}

// Stop cleanly from the moment anything is printed: a caller may stop us as soon as it reads.
const shutdown = async () => {
  await plane?.stop();
  await s3?.stop();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
const env = plane.environment({ s3Endpoint: s3.endpoint, bucket: s3.bucket });
process.stdout.write(
  `immortal-local: control plane on ${plane.url}, S3 on ${s3.endpoint}\n\n# export these where your handler runs:\n`,
);
for (const [key, value] of Object.entries(env)) process.stdout.write(`export ${key}=${value}\n`);
process.stdout.write('\n# task logs follow (Ctrl+C stops)\n');
plane.on('task-started', (task) => process.stdout.write(`[task ${task.id.slice(0, 8)}] started (RUNNING)\n`));
plane.on('task-log', ({ task, line }) => process.stdout.write(`[task ${task.id.slice(0, 8)}] ${line}\n`));
plane.on('task-stopped', (task) =>
  process.stdout.write(
    `[task ${task.id.slice(0, 8)}] STOPPED, exit code ${task.exitCode ?? 'none'}: ${task.stoppedReason}\n`,
  ),
);
