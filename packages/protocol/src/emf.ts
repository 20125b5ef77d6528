/**
 * CloudWatch embedded metric format (EMF): one JSON line that CloudWatch Logs turns into metrics,
 * as Powertools Metrics writes it. The wrapper writes one per handoff, the runner one per run.
 */

/** The units the wrapper and the runner use. */
export type MetricUnit = 'Count' | 'Milliseconds' | 'Bytes';

/**
 * One EMF line: the `_aws` metadata (timestamp, namespace, one dimension set, the metric
 * definitions) and, at the root, each dimension's value, each metric's value and the properties.
 *
 * @example
 * ```ts
 * import { emfLine } from '@immortal-lambda/protocol';
 * console.log(emfLine({
 *   namespace: 'ImmortalLambda', dimensions: { FunctionName: 'report' }, timestamp: Date.now(),
 *   metrics: { Handoffs: { value: 1, unit: 'Count' } }, properties: { requestId: 'c0ffee' },
 * }));
 * ```
 */
export function emfLine(input: {
  namespace: string;
  dimensions: Record<string, string>;
  metrics: Record<string, { value: number; unit: MetricUnit }>;
  properties?: Record<string, unknown>;
  timestamp: number;
}): string {
  const metrics = Object.entries(input.metrics).filter(([, metric]) => Number.isFinite(metric.value));
  return JSON.stringify({
    ...input.properties,
    ...input.dimensions,
    ...Object.fromEntries(metrics.map(([name, metric]) => [name, metric.value])),
    _aws: {
      Timestamp: input.timestamp,
      CloudWatchMetrics: [
        {
          Namespace: input.namespace,
          Dimensions: [Object.keys(input.dimensions)],
          Metrics: metrics.map(([name, metric]) => ({ Name: name, Unit: metric.unit })),
        },
      ],
    },
  });
}
