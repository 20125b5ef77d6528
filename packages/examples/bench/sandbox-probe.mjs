// One Lambda sandbox's first handoff, in a process of its own: the built wrapper, loaded fresh,
// one long invocation whose handoff is due HANDOFF_IN_MS after it starts. The SDK clients load
// as they would in a sandbox (`loadAheadMs`, the wrapper's default, before the handoff). Prints
// one JSON line: the answer's status and the milliseconds from the handoff time to the answer.
//   node bench/sandbox-probe.mjs <request id>   (the function's environment in the process's)
import { withFargateFallback } from '@immortal-lambda/middleware';

const HANDOFF_IN_MS = 4_000;
const id = process.argv[2] ?? `probe-${process.pid}`;
const marginMs = Number(process.env.FARGATE_FALLBACK_MARGIN_MS ?? 10_000);
const handler = withFargateFallback(
  (_event, _context, { signal }) =>
    new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
  { metrics: false, logger: process.env.BURST_DEBUG ? console : { info: () => {}, error: () => {} } },
);
const deadline = Date.now() + marginMs + HANDOFF_IN_MS;
const context = {
  awsRequestId: id,
  functionName: 'report-job',
  functionVersion: '1',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report-job',
  memoryLimitInMB: '1024',
  logGroupName: '/aws/lambda/report-job',
  logStreamName: 'probe',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => deadline - Date.now(),
};
try {
  const answer = await handler({ id }, context);
  console.log(JSON.stringify({ id, status: answer.status, latencyMs: Date.now() - (deadline - marginMs) }));
} catch (error) {
  console.log(JSON.stringify({ id, status: 'error', error: `${error.name}: ${error.message}` }));
}
