import { join } from 'node:path';
import lambdaLocal from 'lambda-local';

lambdaLocal.setLogger({ log: () => undefined, transports: [] } as never);

/** One invocation of a bundled example function, as {@link runLambda} makes it. */
export interface LambdaLegOptions {
  /** The function's name; it runs as version 1. */
  name: string;
  /** The bundled function's folder: its `index.js` exports `handler`. */
  folder: string;
  event: unknown;
  /** The function's timeout, which lambda-local enforces as Lambda does. */
  timeoutMs: number;
  /** The function's environment: the plane's endpoints and its `FARGATE_FALLBACK_*` settings. */
  environment: Readonly<Record<string, string | undefined>>;
  /** Run with this request id instead of a fresh one (a retried invocation). */
  requestId?: string;
  /** The region and account in the function's ARN (default eu-west-1, 123456789012). */
  region?: string;
  account?: string;
}

/** How an invocation ended: what the handler returned, or the error Lambda would report. */
export type LambdaLeg =
  | { ok: true; result: unknown; id: string; elapsedMs: number }
  | { ok: false; error: { errorType: string; errorMessage: string }; id: string; elapsedMs: number };

/**
 * Runs a bundled handler under lambda-local with the context and environment Lambda gives the
 * function (name, version 1, its ARN, `_HANDLER`), and reports how it ended with its request id.
 */
export async function runLambda(options: LambdaLegOptions): Promise<LambdaLeg> {
  const { name, requestId } = options;
  const arn = `arn:aws:lambda:${options.region ?? 'eu-west-1'}:${options.account ?? '123456789012'}:function:${name}`;
  const started = Date.now();
  let id = '';
  // lambda-local writes the function's environment into this process and leaves it there: the
  // test's own calls afterwards must not run with the function's credentials.
  const before = { ...process.env };
  try {
    const result = await lambdaLocal.execute({
      event: options.event,
      lambdaPath: join(options.folder, 'index.js'),
      lambdaHandler: 'handler',
      timeoutMs: options.timeoutMs,
      verboseLevel: 0,
      environment: {
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_VERSION: '1',
        _HANDLER: 'index.handler',
        ...Object.fromEntries(
          Object.entries(options.environment).filter(
            (entry): entry is [string, string] => entry[1] !== undefined,
          ),
        ),
      },
      contextOverwrite: (context: Record<string, unknown>) => {
        context.functionName = name;
        context.functionVersion = '1';
        context.invokedFunctionArn = arn;
        if (requestId) context.awsRequestId = requestId;
        id = String(context.awsRequestId);
      },
    });
    return { ok: true, result, id, elapsedMs: Date.now() - started };
  } catch (error) {
    return {
      ok: false,
      error: error as { errorType: string; errorMessage: string },
      id,
      elapsedMs: Date.now() - started,
    };
  } finally {
    for (const key of Object.keys(options.environment)) {
      if (before[key] === undefined) delete process.env[key];
      else process.env[key] = before[key];
    }
  }
}

/** {@link runLambda} for an invocation that must return: its result and request id. */
export async function invokeLambda(
  options: LambdaLegOptions,
): Promise<{ result: unknown; id: string; elapsedMs: number }> {
  const leg = await runLambda(options);
  if (!leg.ok)
    throw new Error(`${options.name} failed in Lambda: ${leg.error.errorType}: ${leg.error.errorMessage}`);
  return leg;
}
