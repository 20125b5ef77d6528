// Handoff latency: from the handoff timer firing to RunTask arriving at a loopback ECS
// endpoint. Mode `cold` runs one handoff in this fresh process (SDK not loaded yet);
// mode `warm` runs COUNT handoffs in a row in one process (SDK loaded). Prints one JSON line
// of latencies in milliseconds, measured against the server's arrival times.
import { withFargateFallback } from '@immortal-lambda/middleware';

const [mode = 'warm', countText = '200'] = process.argv.slice(2);
const count = mode === 'cold' ? 1 : Number(countText);
const env = {
  ...process.env,
  FARGATE_FALLBACK_CLUSTER: 'bench',
  FARGATE_FALLBACK_TASK_DEFINITION: 'runner',
  FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
  FARGATE_FALLBACK_MARGIN_MS: '10000',
};
const silent = { info: () => {}, error: () => {} };
const handler = withFargateFallback(() => new Promise(() => {}), { env, logger: silent });
const fired = [];
// In warm mode one uncounted handoff first loads the SDK and opens the connection.
for (let i = mode === 'warm' ? -1 : 0; i < count; i++) {
  // Remaining time equal to the margin: the timer is due at once, so it fires on the next turn.
  const context = {
    awsRequestId: `bench-${process.pid}-${i}`,
    functionName: 'bench',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:bench',
    memoryLimitInMB: '128',
    logGroupName: '/aws/lambda/bench',
    logStreamName: 's',
    getRemainingTimeInMillis: () => 10_000,
  };
  const pending = handler({ i }, context);
  await new Promise((resolve) => setImmediate(resolve));
  if (i >= 0) fired.push({ id: context.awsRequestId, at: performance.timeOrigin + performance.now() });
  await pending;
}
console.log(JSON.stringify(fired));
