import { join } from 'node:path';
import type { Timeline } from './timeline.js';

/** How the Lambda leg ended: the handler's (or the wrapper's) answer, or the error Lambda reports. */
export type LambdaLegEnd =
  | { ok: true; result: unknown }
  | {
      ok: false;
      failure: { errorType?: string; errorMessage?: string; stackTrace?: string[]; message?: string };
    };

/** What the Lambda leg runs: the built handler, its event, its timeout and its environment. */
export interface LambdaLegInput {
  name: string;
  outDir: string;
  exportName: string;
  event: unknown;
  timeoutMs: number;
  environment: Record<string, string>;
  fn: { version: string; arn: string };
  timeline: Timeline;
  /** Show the wrapper's metric lines, which go straight to stdout, in the timeline. */
  captureStdout: boolean;
  /** Told the request id the harness gave the invocation. */
  onRequestId: (requestId: string) => void;
  /** Told each line of the leg's console (and captured metric lines), with its request id. */
  onLine?: ((requestId: string, line: string) => void) | undefined;
}

/**
 * Invokes the built handler under lambda-local, which enforces the Lambda timeout, with a
 * Lambda-shaped context of the registered function; the leg's console output (and, when
 * captured, its metric lines) go to the timeline.
 */
export async function runLambdaLeg(input: LambdaLegInput): Promise<LambdaLegEnd> {
  const { name, fn, timeline } = input;
  const { default: lambdaLocal } = await import('lambda-local');
  lambdaLocal.setLogger({ log: () => undefined, transports: [] } as never);
  let requestId = '';
  const restore = captureOutput((text) => {
    timeline.describe('lambda', text);
    if (requestId) input.onLine?.(requestId, text);
  }, input.captureStdout);
  try {
    const result = await lambdaLocal.execute({
      event: input.event as Record<string, unknown>,
      lambdaPath: join(input.outDir, 'index.js'),
      lambdaHandler: input.exportName,
      timeoutMs: input.timeoutMs,
      verboseLevel: 3,
      environment: input.environment,
      contextOverwrite: (context: Record<string, unknown>) => {
        context.functionName = name;
        context.functionVersion = fn.version;
        context.invokedFunctionArn = `${fn.arn}:${fn.version}`;
        requestId = String(context.awsRequestId);
        input.onRequestId(requestId);
      },
    });
    return { ok: true, result };
  } catch (error) {
    return { ok: false, failure: error as Extract<LambdaLegEnd, { ok: false }>['failure'] };
  } finally {
    restore();
  }
}

/**
 * Sends the Lambda leg's console to `sink` (the timeline, the dashboard), and with `stdout` the
 * wrapper's metric lines (which go straight to stdout, as Lambda needs them); returns what
 * restores both.
 */
function captureOutput(sink: (text: string) => void, stdout: boolean): () => void {
  const patched = ['log', 'info', 'warn', 'error'] as const;
  const saved = patched.map((method) => console[method]);
  for (const method of patched) console[method] = (...args: unknown[]) => sink(args.join(' '));
  const stdoutWrite = process.stdout.write;
  if (stdout) {
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = String(chunk);
      if (text.startsWith('{') && text.includes('"_aws"')) {
        sink(text.trim());
        return true;
      }
      return (stdoutWrite as (...args: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    }) as typeof process.stdout.write;
  }
  return () => {
    patched.forEach((method, index) => {
      console[method] = saved[index] as (typeof console)[typeof method];
    });
    process.stdout.write = stdoutWrite;
  };
}
