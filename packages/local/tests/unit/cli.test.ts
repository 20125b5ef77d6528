import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetFunctionCommand, GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';

const cli = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');
const echo = join(import.meta.dirname, '..', 'fixtures', 'echo');

/** What the CLI prints up to the task logs: the environment to export. */
function printedEnvironment(child: ReturnType<typeof spawn>): Promise<string> {
  let out = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output in time: ${out}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk;
      if (out.includes('task logs follow')) {
        clearTimeout(timer);
        resolve(out);
      }
    });
  });
}

describe('immortal-local', () => {
  it('names a missing function folder and exits 2', async () => {
    // Act
    const run = promisify(execFile)(process.execPath, [
      cli,
      '--port',
      '0',
      '--function',
      'report=/no/such/folder:index.handler',
    ]);

    // Assess
    await expect(run).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/\/no\/such\/folder does not exist/),
    });
  });

  it('explains a malformed --function', async () => {
    const run = promisify(execFile)(process.execPath, [cli, '--function', 'report']);
    await expect(run).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/is not <name>=<dir>:<handler>/),
    });
  });

  it('prints the environment to export, then keeps serving until stopped', async () => {
    // Act
    const child = spawn(process.execPath, [cli, '--port', '0', '--function', `echo=${echo}:index.handler`]);
    const out = await printedEnvironment(child);
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('exit', resolve));

    // Assess
    const endpoint = /export AWS_ENDPOINT_URL_ECS=(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(endpoint).toBeDefined();
    expect(out).toContain(`export AWS_ENDPOINT_URL_LAMBDA=${endpoint}`);
    expect(out).toMatch(/export AWS_ENDPOINT_URL_S3=http:\/\/127\.0\.0\.1:\d+/);
    expect(out).toContain('export FARGATE_FALLBACK_TASK_DEFINITION=immortal-runner');
    expect(out).toContain('export FARGATE_FALLBACK_BUCKET=immortal-envelopes');
    expect(code).toBe(0);
  });

  it("applies AWS's rates with --limits aws: Lambda's reads past 15 a second are throttled", async () => {
    // Act
    const child = spawn(process.execPath, [
      cli,
      '--port',
      '0',
      '--limits',
      'aws',
      '--function',
      `echo=${echo}:index.handler`,
    ]);
    const out = await printedEnvironment(child);
    const printed = (name: string) => String(new RegExp(`export ${name}=(\\S+)`).exec(out)?.[1]);
    const lambda = new LambdaClient({
      endpoint: printed('AWS_ENDPOINT_URL_LAMBDA'),
      region: 'eu-west-1',
      credentials: {
        accessKeyId: printed('AWS_ACCESS_KEY_ID'),
        secretAccessKey: printed('AWS_SECRET_ACCESS_KEY'),
      },
      maxAttempts: 1,
    });
    const reads = await Promise.allSettled(
      Array.from({ length: 60 }, () =>
        lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'echo' })),
      ),
    );
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));

    // Assess: 60 reads at once exceed 15 a second however slowly this machine sends them
    const refused = reads.filter((read) => read.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.map((read) => (read as PromiseRejectedResult).reason.name))).toEqual(
      new Set(['TooManyRequestsException']),
    );
  });

  it('names the values --limits takes', async () => {
    const run = promisify(execFile)(process.execPath, [cli, '--limits', 'fast', '--function', 'echo=x:y']);
    await expect(run).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--limits fast is not one of none, aws/),
    });
  });

  it('registers a container image function with a task definition of its own, and says which to export', async () => {
    // Act
    const child = spawn(process.execPath, [
      cli,
      '--port',
      '0',
      '--image',
      'immortal-runner:local',
      '--image-function',
      'transcode=localhost/transcode:1',
    ]);
    const out = await printedEnvironment(child);
    const endpoint = String(/export AWS_ENDPOINT_URL_LAMBDA=(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]);
    // The CLI's plane takes requests signed with the secret it printed, drawn for this run.
    const printed = (name: string) => String(new RegExp(`export ${name}=(\\S+)`).exec(out)?.[1]);
    const lambdaSigningWith = (secretAccessKey: string) =>
      new LambdaClient({
        endpoint,
        region: 'eu-west-1',
        credentials: { accessKeyId: printed('AWS_ACCESS_KEY_ID'), secretAccessKey },
        maxAttempts: 1,
      });
    const answer = await lambdaSigningWith(printed('AWS_SECRET_ACCESS_KEY')).send(
      new GetFunctionCommand({ FunctionName: 'transcode' }),
    );
    const unsigned = lambdaSigningWith('S3RVER').send(new GetFunctionCommand({ FunctionName: 'transcode' }));
    await expect(unsigned).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));

    // Assess
    expect(answer.Configuration?.PackageType).toBe('Image');
    expect(out).toContain(
      '# for the image function transcode, instead:\nexport FARGATE_FALLBACK_TASK_DEFINITION=transcode-runner',
    );
  });

  it('asks for the runner image an image function needs', async () => {
    // Act
    const run = promisify(execFile)(process.execPath, [cli, '--image-function', 'transcode=localhost/t:1']);

    // Assess
    await expect(run).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/needs the runner image .*give --image/),
    });
  });
});
