import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const examples = join(import.meta.dirname, '..');
const cli = join(examples, '..', 'local', 'dist', 'cli.js');
const runner = join(examples, '..', 'runner', 'dist', 'cli.js');
const run = promisify(execFile);
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'immortal-dev-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** `immortal-local dev <handler>` with the event written to a file, a 3 s timeout and a 1.5 s margin. */
const devArgs = (handler: string, event: unknown, extra: string[] = []) => {
  const eventFile = join(scratch, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(eventFile, JSON.stringify(event));
  return [
    cli,
    'dev',
    handler,
    '--event',
    eventFile,
    '--timeout',
    '3',
    '--margin-ms',
    '1500',
    '--runner',
    runner,
    ...extra,
  ];
};
const devEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };

const dev = async (handler: string, event: unknown, extra: string[] = []) => {
  return run(process.execPath, devArgs(handler, event, extra), {
    cwd: examples,
    timeout: 90_000,
    env: devEnv,
  }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
};

describe('immortal-local dev <handler file>', () => {
  it("bundles the user's handler, hands it off under the timeout and shows both legs as one timeline", async () => {
    // Act
    const { code, stdout } = await dev('functions/report/index.ts', {
      reportId: 'dev',
      steps: 3,
      stepMs: 1_000,
    });

    // Assess
    expect(code).toBe(0);
    const steps = [
      /build +bundled functions\/report\/index\.ts \([\d.]+ KB, source maps on\)/,
      /lambda +invoking report with a 3 s timeout, handoff margin 1\.5 s/,
      /lambda +Report dev: step 1\/3 done/,
      /lambda +Invocation handed off to Fargate/,
      /ecs +task \w{8} RUNNING/,
      /runner +Calling the handler/,
      /runner +Report dev: step 3\/3 done/,
      /runner +immortal-runner finished \(outcome success, exitCode 0/,
      /dev +OK: handed off and completed by the runner/,
    ];
    let from = 0;
    for (const step of steps) {
      const match = step.exec(stdout.slice(from));
      expect(match, `missing, or out of order: ${step}\n${stdout}`).not.toBeNull();
      from += (match?.index ?? 0) + (match?.[0].length ?? 0);
    }
  });

  it("exits 1 for a handler that fails on Fargate, its stack naming the TypeScript source's line", async () => {
    // Act
    const { code, stdout } = await dev('tests/fixtures/fails-on-fargate.ts', { order: 1 });

    // Assess
    expect(code).toBe(1);
    expect(stdout).toMatch(/runner +immortal-runner finished \(outcome handler-error, exitCode 1/);
    expect(stdout).toMatch(/fails-on-fargate\.ts:5:\d+/);
    expect(stdout).toMatch(/dev +FAILED: the runner exited 1/);
  });

  it('says which exports the handler file has when --export names none of them, and runs nothing', async () => {
    // Act
    const { code, stdout } = await dev('tests/fixtures/fails-on-fargate.ts', { order: 1 }, [
      '--export',
      'nope',
    ]);

    // Assess
    expect(code).toBe(1);
    expect(stdout).toMatch(
      /fails-on-fargate\.ts has no export named nope: it exports handler; name one with --export/,
    );
    expect(stdout).not.toMatch(/TypeError/);
    expect(stdout).not.toMatch(/invoking/);
  });

  it('registers layers for the function and leaves their modules out of the bundle (--layer, --external)', async () => {
    // Prepare: a layer folder as Lambda unpacks it under /opt
    const layer = join(scratch, 'greeting-layer');
    mkdirSync(join(layer, 'nodejs', 'node_modules', 'greeting'), { recursive: true });
    writeFileSync(
      join(layer, 'nodejs', 'node_modules', 'greeting', 'index.js'),
      "exports.greet = (where) => 'hello from the layer, in ' + where;\n",
    );

    // Act: finished in Lambda (the handler is quick), so the Lambda leg needs the layer too
    const { code, stdout } = await dev('tests/fixtures/uses-layer.ts', {}, [
      '--layer',
      layer,
      '--external',
      'greeting',
    ]);

    // Assess
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/lambda +hello from the layer, in lambda/);
    expect(stdout).toMatch(/dev +OK: completed in Lambda/);
  });

  it('--chaos finds the work outside step() a handoff does twice, and the checkpoints done again', async () => {
    // Act: a handler that notes its start outside any step, and starts its checkpoints over
    const { code, stdout } = await dev(
      'tests/fixtures/chaos-writes.ts',
      { parts: 6, partMs: 300, restart: true },
      ['--chaos', '2'],
    );

    // Assess
    expect(code, stdout).toBe(1);
    expect(stdout).toMatch(/chaos +the handler worked \d+ ms in Lambda; now 2 runs/);
    expect(stdout).toMatch(
      /chaos +the file \S+-started\.txt was written outside step\(\) in both legs \(run 1\): write it inside a step/,
    );
    // Run 2 hands off after a checkpoint at least (run 1 may too, on a fast machine).
    expect(stdout).toMatch(
      /chaos +the checkpoint \d was recorded in Lambda and again on Fargate \(runs? (\d, )*2\): resume from lastCheckpoint/,
    );
    // The parts are written inside steps: never reported.
    expect(stdout).not.toMatch(/part-\d\.txt was written/);
    expect(stdout).toMatch(/dev +FAILED: 2 chaos runs, 2 handed off: \d+ things done in both legs/);
  });

  it('--chaos passes a handler whose work outside steps is safe to hand off', async () => {
    // Act
    const { code, stdout } = await dev(
      'tests/fixtures/chaos-writes.ts',
      { parts: 6, partMs: 300, outside: false },
      ['--chaos', '2'],
    );

    // Assess
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/dev +OK: 2 chaos runs, 2 handed off: no work outside step\(\) ran in both legs/);
  });

  it("shows both legs on the dashboard under --ui: the Lambda leg's lines beside the runner's", async () => {
    // Prepare
    const child = spawn(
      process.execPath,
      devArgs('functions/report/index.ts', { reportId: 'ui', steps: 3, stepMs: 1_000 }, ['--ui', '0']),
      { cwd: examples, env: devEnv },
    );
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += String(chunk);
    });

    try {
      // Act: once the run is over, read the dashboard's state as its page does.
      const deadline = Date.now() + 90_000;
      while (!/dev +(OK|FAILED)/.test(stdout) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      const url = /dashboard on (http:\/\/\S+)/.exec(stdout)?.[1];
      const state = (await (await fetch(`${url}/api/state`)).json()) as {
        invocations: { logs: { source: string; line: string }[] }[];
      };

      // Assess
      expect(stdout, stdout).toMatch(/dev +OK: handed off and completed by the runner/);
      const sources = new Set(state.invocations[0]?.logs.map((entry) => entry.source));
      expect(sources).toEqual(new Set(['lambda', 'runner']));
      const lines = state.invocations[0]?.logs.map((entry) => `${entry.source} ${entry.line}`).join('\n');
      expect(lines).toMatch(/lambda .*step 1\/3 done/);
      expect(lines).toMatch(/lambda .*Invocation handed off to Fargate/);
      expect(lines).toMatch(/runner .*step 3\/3 done/);
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
