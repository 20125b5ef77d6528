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
