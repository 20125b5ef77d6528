// Handoff latency: from the handoff timer firing to RunTask arriving at a loopback ECS
// endpoint. Mode `cold` runs one handoff in this fresh process, due at once (SDK not loaded yet);
// mode `ahead` one handoff in this fresh process, due 1.5 s in, the SDK loaded 1 s before it
// (`loadAheadMs`: a sandbox's first handoff); mode `warm` runs COUNT handoffs in a row in one
// process (SDK loaded). Prints one JSON line of the times the handoffs were due, to set against
// the server's arrival times.
import { withFargateFallback } from '@immortal-lambda/middleware';

const [mode = 'warm', countText = '200'] = process.argv.slice(2);
const count = mode === 'warm' ? Number(countText) : 1;
const aheadMs = 1_500;
const env = {
  ...process.env,
  FARGATE_FALLBACK_CLUSTER: 'bench',
  FARGATE_FALLBACK_TASK_DEFINITION: 'runner',
  FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
  FARGATE_FALLBACK_MARGIN_MS: '10000',
  FARGATE_FALLBACK_LOAD_AHEAD_MS: '1000',
};
const silent = { info: () => {}, error: () => {} };
const handler = withFargateFallback(() => new Promise(() => {}), { env, logger: silent });
const fired = [];
// In warm mode one uncounted handoff first loads the SDK and opens the connection.
for (let i = mode === 'warm' ? -1 : 0; i < count; i++) {
  // Remaining time equal to the margin: the timer is due at once, so it fires on the next turn;
  // in `ahead` mode it is due aheadMs later.
  const remaining = mode === 'ahead' ? 10_000 + aheadMs : 10_000;
  const dueAt = performance.timeOrigin + performance.now() + remaining - 10_000;
  const context = {
    awsRequestId: `bench-${process.pid}-${i}`,
    functionName: 'bench',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:bench',
    memoryLimitInMB: '128',
    logGroupName: '/aws/lambda/bench',
    logStreamName: 's',
    getRemainingTimeInMillis: () => remaining,
  };
  const pending = handler({ i }, context);
  await new Promise((resolve) => setImmediate(resolve));
  const firedAt = Math.max(dueAt, performance.timeOrigin + performance.now());
  if (i >= 0) fired.push({ id: context.awsRequestId, at: firedAt });
  await pending;
}
console.log(JSON.stringify(fired));
