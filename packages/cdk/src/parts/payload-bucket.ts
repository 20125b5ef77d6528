import { DEFAULT_OUTCOME_PREFIX } from '@immortal-lambda/protocol';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/** What the payload bucket is made with: where envelopes go, and how long envelopes and records stay. */
export interface PayloadBucketProps {
  payloadPrefix: string;
  envelopeExpiration?: Duration | undefined;
  outcomeExpiration?: Duration | undefined;
}

/**
 * The payload bucket: encrypted, TLS only, private, owned by the bucket owner, envelopes expiring
 * after 7 days and outcome records after 30 (by default), emptied when the stack is deleted.
 * Created in the scope it is given (the `FargateFallback`), as `Payloads`.
 *
 * @example
 * ```ts
 * const bucket = payloadBucket(this, { payloadPrefix: 'immortal-lambda/envelopes/' });
 * ```
 */
export function payloadBucket(scope: Construct, props: PayloadBucketProps): s3.Bucket {
  return new s3.Bucket(scope, 'Payloads', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: [
      { prefix: props.payloadPrefix, expiration: props.envelopeExpiration ?? Duration.days(7) },
      { prefix: DEFAULT_OUTCOME_PREFIX, expiration: props.outcomeExpiration ?? Duration.days(30) },
      { abortIncompleteMultipartUploadAfter: Duration.days(1) },
    ],
    removalPolicy: RemovalPolicy.DESTROY,
    autoDeleteObjects: true,
  });
}

/**
 * The expirations asked for, on a bucket the app passed in: added as its lifecycle rules when it
 * is a bucket of this app; an imported bucket's rules cannot be changed from here, so asking for
 * them fails the synth, saying what to do instead. Nothing is added when none was asked for.
 *
 * @example
 * ```ts
 * expireOnGivenBucket(this, existingBucket, { payloadPrefix: 'immortal-lambda/envelopes/', envelopeExpiration: Duration.days(2) });
 * ```
 */
export function expireOnGivenBucket(scope: Construct, bucket: s3.IBucket, props: PayloadBucketProps): void {
  const rules = [
    ...(props.envelopeExpiration
      ? [{ prefix: props.payloadPrefix, expiration: props.envelopeExpiration }]
      : []),
    ...(props.outcomeExpiration
      ? [{ prefix: DEFAULT_OUTCOME_PREFIX, expiration: props.outcomeExpiration }]
      : []),
  ];
  if (rules.length === 0) return;
  if (!(bucket instanceof s3.Bucket)) {
    throw new Error(
      `FargateFallback ${scope.node.path}: envelopeExpiration and outcomeExpiration become lifecycle rules of the payload bucket, and the bucket passed in is imported, so its rules cannot be set here: add rules for the prefixes ${props.payloadPrefix} and ${DEFAULT_OUTCOME_PREFIX} where the bucket is defined, and leave these props out`,
    );
  }
  for (const rule of rules) bucket.addLifecycleRule(rule);
}
