#!/usr/bin/env node
// immortal-local: the local control plane as a standalone process.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DEFAULT_CONTAINER_NAME, ENV } from '@immortal-lambda/protocol';
import { startDashboard } from './dashboard.js';
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
  --image-function <name>=<image>
                                 register a container image function from a local image; its tasks
                                 run that image through podman with the runner (--image) beside it
  --layer <name>=<dir>           register a layer (before the functions that use it)
  --use-layer <function>=<name>  attach a registered layer to a function
  --env <name>=<KEY>=<VALUE>     a variable of a function's configuration
  --bucket <name>                S3 bucket for spilled envelopes (default immortal-envelopes)
  --image <name>                 run tasks from this runner image with podman instead of a local process
                                 (an image function's tasks copy the runner from it)
  --runner <path>                the runner CLI to run tasks with (default: the installed @immortal-lambda/runner)
  --ui <port>                    serve the dashboard on loopback: every invocation, its tasks, logs and timeline
  --limits <none|aws>            apply AWS's documented rates (Fargate launches, RunTask, ListTasks and
                                 DescribeTasks, Lambda's reads) and throttle beyond them (default none)
  --help                         this text
`;

function fail(message: string): never {
  process.stderr.write(`immortal-local: ${message}\n`);
  process.exit(2);
}

const devUsage = `Usage: immortal-local dev <handler file> --event <json file> --timeout <s> [options]

Bundles your handler with esbuild, registers it with a local control plane, invokes it under a
harness that enforces the timeout, and prints the Lambda leg, the handoff and the runner's leg as
one timeline; with --watch it runs again on every save.

  --event <file>        the event, as JSON (required)
  --timeout <s>         the Lambda timeout in seconds (required)
  --export <name>       the handler's export (default handler)
  --margin-ms <n>       ${ENV.marginMs} (default a fifth of the timeout, at least 1000)
  --env <KEY>=<VALUE>   a variable of the function's configuration (repeatable)
  --layer <dir>         a layer's folder, as it unpacks under /opt (repeatable, in order)
  --external <module>   leave a module out of the bundle: one a layer provides (repeatable)
  --watch               run again when a file beside the handler changes
  --runner <path>       the runner CLI (default: the installed @immortal-lambda/runner)
  --ui <port>           serve the dashboard on loopback, with a button to invoke again
  --chaos <n>           run the handler n times, each handed off at a random point, and report
                        work outside step() that ran in both legs (files written, calls made)
                        and checkpoints recorded again; exits 1 when there is any
`;

if (process.argv[2] === 'dev') {
  let dev: ReturnType<typeof parseArgs>;
  try {
    dev = parseArgs({
      args: process.argv.slice(3),
      allowPositionals: true,
      options: {
        event: { type: 'string' },
        timeout: { type: 'string' },
        export: { type: 'string', default: 'handler' },
        'margin-ms': { type: 'string' },
        env: { type: 'string', multiple: true, default: [] },
        layer: { type: 'string', multiple: true, default: [] },
        external: { type: 'string', multiple: true, default: [] },
        watch: { type: 'boolean', default: false },
        runner: { type: 'string' },
        ui: { type: 'string' },
        chaos: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    fail(`${(error as Error).message}\n\n${devUsage}`);
  }
  const options = dev.values as Record<string, string | string[] | boolean | undefined>;
  if (options.help) {
    process.stdout.write(devUsage);
    process.exit(0);
  }
  const [handlerFile] = dev.positionals;
  if (!handlerFile) fail(`give the handler file\n\n${devUsage}`);
  if (typeof options.event !== 'string') fail(`give --event <json file>\n\n${devUsage}`);
  const timeout = Number(options.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 900)
    fail(`--timeout ${options.timeout ?? '(missing)'} is not a Lambda timeout in seconds (1 to 900)`);
  const margin = options['margin-ms'] === undefined ? undefined : Number(options['margin-ms']);
  if (margin !== undefined && (!Number.isInteger(margin) || margin < 1_000))
    fail(`--margin-ms ${options['margin-ms']} is not a whole number of milliseconds from 1000`);
  const chaos = options.chaos === undefined ? undefined : Number(options.chaos);
  if (chaos !== undefined && (!Number.isInteger(chaos) || chaos < 1 || chaos > 1_000))
    fail(`--chaos ${options.chaos} is not a number of runs from 1 to 1000`);
  if (chaos !== undefined && (options.watch || options.ui !== undefined))
    fail('--chaos runs on its own: leave out --watch and --ui');
  const environment: Record<string, string> = {};
  for (const pair of options.env as string[]) {
    const at = pair.indexOf('=');
    if (at < 1) fail(`--env "${pair}" is not <KEY>=<VALUE>`);
    environment[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const { runDev } = await import('./dev.js');
  const code = await runDev({
    handlerFile,
    eventFile: options.event,
    timeoutMs: timeout * 1000,
    exportName: String(options.export),
    ...(margin !== undefined ? { marginMs: margin } : {}),
    environment,
    layers: options.layer as string[],
    external: options.external as string[],
    watch: options.watch === true,
    ...(typeof options.runner === 'string' ? { runner: options.runner } : {}),
    ...(typeof options.ui === 'string' ? { ui: Number(options.ui) } : {}),
    ...(chaos !== undefined ? { chaos } : {}),
  }).catch((error: unknown) => {
    if (error instanceof LocalPlaneError) fail(error.message);
    throw error;
  });
  process.stdout.write('', () => process.exit(code));
  await new Promise(() => {});
}

let parsed: ReturnType<typeof parseArgs>;
try {
  parsed = parseArgs({
    options: {
      port: { type: 'string', default: '4566' },
      function: { type: 'string', multiple: true, default: [] },
      'image-function': { type: 'string', multiple: true, default: [] },
      layer: { type: 'string', multiple: true, default: [] },
      'use-layer': { type: 'string', multiple: true, default: [] },
      env: { type: 'string', multiple: true, default: [] },
      bucket: { type: 'string', default: 'immortal-envelopes' },
      image: { type: 'string' },
      runner: { type: 'string' },
      ui: { type: 'string' },
      limits: { type: 'string', default: 'none' },
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
const limits = values.limits;
if (limits !== 'none' && limits !== 'aws') fail(`--limits ${limits} is not one of none, aws`);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${values.port} is not a port number`);

let s3: LocalS3 | undefined;
let plane: LocalControlPlane | undefined;
try {
  s3 = await startS3({ bucket: String(values.bucket) });
  plane = new LocalControlPlane({
    s3Endpoint: s3.endpoint,
    // Drawn per run and printed with the rest of the environment: a request not signed with it,
    // from a web page say, is refused.
    signingSecret: randomBytes(24).toString('base64url'),
    limits,
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
  const imageFunctions = values['image-function'] as string[];
  if ((values.function as string[]).length === 0 && imageFunctions.length === 0)
    fail(`register at least one --function or --image-function\n\n${usage}`);
  for (const spec of imageFunctions) {
    const [name, image] = spec.split(/=(.*)/s);
    if (!name || !image || !/^[A-Za-z0-9_-]+$/.test(name))
      fail(`--image-function "${spec}" is not <name>=<image>, e.g. transcode=localhost/transcode:latest`);
    if (typeof values.image !== 'string')
      fail(
        `--image-function ${name} needs the runner image its tasks copy the runner from: give --image (packages/runner/container/build-image.sh builds one)`,
      );
    plane.registerFunction({ name, image, environment: environments.get(name) ?? {} });
    plane.registerTaskDefinition({
      family: `${name}-runner`,
      containerName: DEFAULT_CONTAINER_NAME,
      environment: {},
      image: { function: image, runner: values.image },
    });
  }
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
  if (typeof values.ui === 'string') {
    const uiPort = Number(values.ui);
    if (!Number.isInteger(uiPort) || uiPort < 0 || uiPort > 65535)
      fail(`--ui ${values.ui} is not a port number`);
    const dashboard = await startDashboard(plane, { port: uiPort, s3 });
    process.stdout.write(`immortal-local: dashboard on ${dashboard.url}\n`);
  }
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
for (const spec of values['image-function'] as string[]) {
  const name = spec.split('=')[0];
  process.stdout.write(
    `# for the image function ${name}, instead:\nexport ${ENV.taskDefinition}=${name}-runner\n`,
  );
}
process.stdout.write('\n# task logs follow (Ctrl+C stops)\n');
plane.on('task-started', (task) => process.stdout.write(`[task ${task.id.slice(0, 8)}] started (RUNNING)\n`));
plane.on('task-log', ({ task, line }) => process.stdout.write(`[task ${task.id.slice(0, 8)}] ${line}\n`));
plane.on('task-stopped', (task) =>
  process.stdout.write(
    `[task ${task.id.slice(0, 8)}] STOPPED, exit code ${task.exitCode ?? 'none'}: ${task.stoppedReason}\n`,
  ),
);
