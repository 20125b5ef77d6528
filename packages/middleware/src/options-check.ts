import { ENV } from '@immortal-lambda/protocol/basics';
import { ConfigurationError } from './errors.js';
import { kind, type Options } from './settings-reader.js';

/** Every option name, for the unknown-name warning and its "did you mean". */
const OPTION_NAMES = [
  'cluster',
  'taskDefinition',
  'containerName',
  'subnets',
  'securityGroups',
  'assignPublicIp',
  'capacity',
  'payloadBucket',
  'payloadPrefix',
  'marginMs',
  'envelopeTransport',
  'maxInLambdaMs',
  'prewarmMs',
  'loadAheadMs',
  'launchQueue',
  'holdSqsBatches',
  'ordered',
  'metrics',
  'metricsWriter',
  'disabled',
  'handoffResponse',
  'routeToFargate',
  'ecsClient',
  's3Client',
  'sqsClient',
  'logger',
  'env',
  'clock',
  'random',
] as const;

/**
 * Checks the options object itself: that it is one, and that the callbacks and clients it
 * carries have the shape they must. Returns the names it does not know, for a warning.
 */
export function checkOptions(options: unknown): { options: Options; unknown: string[] } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigurationError([
      `the options must be an object (or left out), got ${kind(options)}: pass { cluster, taskDefinition, … } or rely on the environment variables (${ENV.cluster}, …)`,
    ]);
  }
  const record = options as Options;
  const problems: string[] = [];
  const callable = (name: string, what: string) => {
    const value = record[name];
    if (value !== undefined && typeof value !== 'function')
      problems.push(`${name} must be ${what}, got ${kind(value)}`);
  };
  callable('handoffResponse', 'a function (receipt, event, context) => response');
  callable('random', 'a function returning a number in [0, 1)');
  callable('routeToFargate', 'a function (event, context) => boolean');
  callable('metricsWriter', 'a function (line) => void');
  if (record.metrics !== undefined && typeof record.metrics !== 'boolean')
    problems.push(`metrics must be true or false, got ${kind(record.metrics)} (${ENV.metrics})`);
  const withMethods = (name: string, methods: readonly string[], what: string) => {
    const value = record[name] as Record<string, unknown> | undefined;
    if (value === undefined) return;
    if (value === null || typeof value !== 'object' || methods.some((m) => typeof value[m] !== 'function'))
      problems.push(`${name} must be ${what} (with ${methods.join(', ')} methods), got ${kind(value)}`);
  };
  withMethods('logger', ['info', 'error'], 'a logger such as a Powertools Logger');
  withMethods('clock', ['now', 'setTimeout', 'clearTimeout'], 'a clock');
  withMethods('ecsClient', ['send'], 'an ECSClient');
  withMethods('s3Client', ['send'], 'an S3Client');
  withMethods('sqsClient', ['send'], 'an SQSClient');
  if (record.env !== undefined && (record.env === null || typeof record.env !== 'object'))
    problems.push(`env must be an object of environment variables, got ${kind(record.env)}`);
  if (problems.length > 0) throw new ConfigurationError(problems);
  const known = new Set<string>(OPTION_NAMES);
  const unknown = Object.keys(record).filter((key) => !known.has(key));
  return { options: record, unknown };
}

/** A warning for option names that are not options, with the closest known name when there is one. */
export function unknownOptionsWarning(names: readonly string[]): string {
  const near = (name: string) =>
    OPTION_NAMES.find((known) => known.toLowerCase() === name.toLowerCase()) ??
    OPTION_NAMES.find((known) => distance(known.toLowerCase(), name.toLowerCase()) <= 2);
  return `immortal-lambda ignores unknown options: ${names
    .map((name) => {
      const guess = near(name);
      return guess ? `${name} (did you mean ${guess}?)` : name;
    })
    .join(', ')}`;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}
