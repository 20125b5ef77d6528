// Fast-path overhead per invocation: a bare async handler, the same handler wrapped with
// withFargateFallback, and the same handler under middy's own early-timeout race. Prints one
// JSON line. Run by run.mjs; usable alone: node bench/fast-path.mjs

import { withFargateFallback } from '@immortal-lambda/middleware';
import middy from '@middy/core';

const env = {
  FARGATE_FALLBACK_CLUSTER: 'bench',
  FARGATE_FALLBACK_TASK_DEFINITION: 'runner',
  FARGATE_FALLBACK_SUBNETS: 'subnet-0aaaaaaaaaaaaaaa1',
};
const context = { awsRequestId: 'bench', functionName: 'bench', getRemainingTimeInMillis: () => 900_000 };
const event = { id: 1 };

const bare = async (e) => e.id;
const readsSignal = async (e, _c, { signal }) => (signal.aborted ? 0 : e.id);

const variants = {
  bare,
  withFargateFallback: withFargateFallback(bare, { env }),
  'withFargateFallback (handler reads signal)': withFargateFallback(readsSignal, { env }),
  'middy timeoutEarlyInMillis': middy(bare, { timeoutEarlyInMillis: 10_000 }),
};

const CALLS = 20_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 25);
const samples = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));

for (const handler of Object.values(variants)) for (let i = 0; i < CALLS; i++) await handler(event, context);
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, handler] of Object.entries(variants)) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) await handler(event, context);
    samples[name].push(Number(process.hrtime.bigint() - start) / CALLS);
  }
}
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
console.log(
  JSON.stringify(Object.fromEntries(Object.entries(samples).map(([name, v]) => [name, median(v)]))),
);
