import { describe, expect, it } from 'vitest';
import { emfLine } from '../../src/emf.js';
import { readMetricsSettings } from '../../src/metrics.js';

/**
 * The embedded metric format's rules for a valid line: a root `_aws` object with a millisecond
 * `Timestamp` and a `CloudWatchMetrics` array of directives, each with a `Namespace`, `Dimensions`
 * as an array of dimension-name arrays and `Metrics` as `{ Name, Unit? }`; every dimension name
 * a root member with a string value, every metric name a root member with a number (or array of
 * numbers); at most 100 metrics and 30 dimensions per set. Returns what breaks them.
 */
function emfViolations(line: string): string[] {
  const problems: string[] = [];
  const root = JSON.parse(line) as Record<string, unknown>;
  const aws = root._aws as { Timestamp?: unknown; CloudWatchMetrics?: unknown } | undefined;
  if (typeof aws !== 'object' || aws === null) return ['no _aws object'];
  if (!Number.isInteger(aws.Timestamp) || (aws.Timestamp as number) < 0)
    problems.push('_aws.Timestamp is not epoch ms');
  if (!Array.isArray(aws.CloudWatchMetrics) || aws.CloudWatchMetrics.length === 0)
    return [...problems, '_aws.CloudWatchMetrics is not a non-empty array'];
  for (const directive of aws.CloudWatchMetrics as Record<string, unknown>[]) {
    if (typeof directive.Namespace !== 'string' || directive.Namespace.length === 0)
      problems.push('no Namespace');
    const sets = directive.Dimensions as unknown;
    if (!Array.isArray(sets)) problems.push('Dimensions is not an array');
    for (const set of (sets as unknown[][]) ?? []) {
      if (!Array.isArray(set) || set.length > 30)
        problems.push('a dimension set is not an array of at most 30');
      for (const name of set)
        if (typeof root[name as string] !== 'string') problems.push(`dimension ${name} has no string value`);
    }
    const metrics = directive.Metrics as { Name?: unknown; Unit?: unknown }[];
    if (!Array.isArray(metrics) || metrics.length > 100)
      problems.push('Metrics is not an array of at most 100');
    for (const metric of metrics ?? []) {
      if (typeof metric.Name !== 'string' || metric.Name.length === 0) problems.push('a metric has no Name');
      const value = root[metric.Name as string];
      if (typeof value !== 'number' && !(Array.isArray(value) && value.every((v) => typeof v === 'number')))
        problems.push(`metric ${metric.Name} has no numeric value`);
      if (!['Count', 'Milliseconds', 'Bytes', undefined].includes(metric.Unit as string))
        problems.push(`unit ${metric.Unit}`);
    }
  }
  return problems;
}

describe('emfLine', () => {
  it('writes a line the embedded metric format accepts, with dimensions, metrics and properties at the root', () => {
    // Act
    const line = emfLine({
      namespace: 'ImmortalLambda',
      dimensions: { FunctionName: 'report', Stage: 'prod' },
      metrics: {
        Handoffs: { value: 1, unit: 'Count' },
        HandoffLatency: { value: 41, unit: 'Milliseconds' },
        EnvelopeBytes: { value: 812, unit: 'Bytes' },
      },
      properties: { requestId: 'c0ffee' },
      timestamp: 1_764_201_600_000,
    });

    // Assess
    expect(emfViolations(line)).toEqual([]);
    expect(JSON.parse(line)).toMatchObject({
      FunctionName: 'report',
      Stage: 'prod',
      Handoffs: 1,
      HandoffLatency: 41,
      requestId: 'c0ffee',
      _aws: { CloudWatchMetrics: [{ Namespace: 'ImmortalLambda', Dimensions: [['FunctionName', 'Stage']] }] },
    });
    expect(line).not.toContain('\n');
  });

  it('leaves out a metric whose value is not a finite number, so that the line stays valid', () => {
    // Act
    const line = emfLine({
      namespace: 'ImmortalLambda',
      dimensions: { FunctionName: 'report' },
      metrics: {
        DeadTime: { value: Number.NaN, unit: 'Milliseconds' },
        Relaunches: { value: 0, unit: 'Count' },
      },
      timestamp: 1,
    });

    // Assess
    expect(emfViolations(line)).toEqual([]);
    expect(JSON.parse(line)._aws.CloudWatchMetrics[0].Metrics).toEqual([
      { Name: 'Relaunches', Unit: 'Count' },
    ]);
  });
});

describe('readMetricsSettings', () => {
  it('is on, in ImmortalLambda, with no extra dimensions by default', () => {
    expect(readMetricsSettings({})).toEqual({
      settings: { enabled: true, namespace: 'ImmortalLambda', dimensions: {} },
      problems: [],
    });
  });

  it('reads the switch, the namespace and Name=value dimensions', () => {
    const { settings, problems } = readMetricsSettings({
      FARGATE_FALLBACK_METRICS: 'false',
      FARGATE_FALLBACK_METRICS_NAMESPACE: 'Jobs/Reports',
      FARGATE_FALLBACK_METRICS_DIMENSIONS: 'Stage=prod, Team=data',
    });
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      enabled: false,
      namespace: 'Jobs/Reports',
      dimensions: { Stage: 'prod', Team: 'data' },
    });
  });

  it('names what is wrong: the switch, a reserved namespace, a pair without =', () => {
    const { problems } = readMetricsSettings({
      FARGATE_FALLBACK_METRICS: 'maybe',
      FARGATE_FALLBACK_METRICS_NAMESPACE: 'AWS/Lambda',
      FARGATE_FALLBACK_METRICS_DIMENSIONS: 'Stage',
    });
    expect(problems.join('\n')).toContain('FARGATE_FALLBACK_METRICS is "maybe": use true or false');
    expect(problems.join('\n')).toContain('FARGATE_FALLBACK_METRICS_DIMENSIONS holds "Stage"');
    expect(problems.join('\n')).toContain('may not start with "AWS/"');
  });
});
