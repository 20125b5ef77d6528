import { DEFAULT_MARGIN_MS } from '@immortal-lambda/protocol';
import { Annotations, type Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';

/** Lambda's timeout for a function that sets none. */
const LAMBDA_DEFAULT_TIMEOUT_MS = 3_000;

/**
 * A function whose timeout is at or below the margin hands every invocation off at once, as soon
 * as it starts: most likely a timeout left at Lambda's default of 3 s. Said at synth, with the numbers.
 */
export function warnWhenMarginCoversTimeout(
  scope: Construct,
  fn: lambda.Function,
  margin: Duration | undefined,
): void {
  const timeoutMs = fn.timeout?.toMilliseconds() ?? LAMBDA_DEFAULT_TIMEOUT_MS;
  const marginMs = margin?.toMilliseconds() ?? DEFAULT_MARGIN_MS;
  if (timeoutMs > marginMs) return;
  Annotations.of(scope).addWarningV2(
    '@immortal-lambda/cdk:margin-covers-timeout',
    `${fn.node.path} times out after ${timeoutMs} ms and hands off ${marginMs} ms before its deadline: every invocation will be handed off to Fargate as soon as it starts. Raise the function's timeout (Lambda allows 15 minutes) or lower the margin prop.`,
  );
}
