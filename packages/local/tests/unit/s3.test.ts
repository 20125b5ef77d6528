import {
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalS3, startS3 } from '../../src/s3.js';

let s3: LocalS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await startS3();
  client = new S3Client({
    region: 'eu-west-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
});

afterAll(async () => {
  client.destroy();
  await s3.stop();
});

describe('the local S3 emulator', () => {
  it.each([
    ['a 1,000-character key part', `envelopes/${'k'.repeat(1_000)}.json`],
    ['a key of long multi-byte parts', `${'é'.repeat(200)}/${'ü'.repeat(200)}/id.json`],
  ])('stores and reads back %s, and keeps serving', async (_what, key) => {
    // Act
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'envelope' }));
    const read = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));

    // Assess
    expect(await read.Body?.transformToString()).toBe('envelope');
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'short.json', Body: 'still up' }));
    const short = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'short.json' }));
    expect(await short.Body?.transformToString()).toBe('still up');
  });

  it('records each call as IAM authorises it: objects by key, a listing on the bucket with its prefix', async () => {
    // Prepare
    s3.audit.length = 0;

    // Act
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'records/a.json', Body: '{}' }));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'records/' }));
    await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'records/a.json' }));

    // Assess
    expect(listed.Contents?.map((object) => object.Key)).toEqual(['records/a.json']);
    expect(s3.audit.map(({ action, resource, context }) => ({ action, resource, context }))).toEqual([
      { action: 's3:PutObject', resource: `arn:aws:s3:::${s3.bucket}/records/a.json`, context: {} },
      {
        action: 's3:ListBucket',
        resource: `arn:aws:s3:::${s3.bucket}`,
        context: { 's3:prefix': 'records/' },
      },
      { action: 's3:GetObject', resource: `arn:aws:s3:::${s3.bucket}/records/a.json`, context: {} },
    ]);
  });

  it('lets one conditional create of a key win and refuses the others with 412, as S3 does', async () => {
    // Act: four writers at once, each only if the key does not exist yet.
    const key = 'claims/one.json';
    const settled = await Promise.allSettled(
      ['a', 'b', 'c', 'd'].map((who) =>
        client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: who, IfNoneMatch: '*' })),
      ),
    );

    // Assess
    const won = settled.flatMap((result, index) =>
      result.status === 'fulfilled' ? [['a', 'b', 'c', 'd'][index]] : [],
    );
    expect(won).toHaveLength(1);
    for (const result of settled.filter((each) => each.status === 'rejected'))
      expect((result as PromiseRejectedResult).reason).toMatchObject({ $metadata: { httpStatusCode: 412 } });
    const read = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    expect(await read.Body?.transformToString()).toBe(won[0]);
  });
});

describe("the local S3's lifecycle rules", () => {
  it('answers the rules it was given, and NoSuchLifecycleConfiguration without any', async () => {
    // Prepare
    const ruled = await startS3({
      bucket: 'ruled',
      lifecycle: [{ id: 'envelopes', prefix: 'immortal-lambda/envelopes/', expirationDays: 7 }],
    });
    const at = (endpoint: string) =>
      new S3Client({
        region: 'eu-west-1',
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      });

    try {
      // Act
      const rules = await at(ruled.endpoint).send(
        new GetBucketLifecycleConfigurationCommand({ Bucket: 'ruled' }),
      );
      const none = at(s3.endpoint).send(new GetBucketLifecycleConfigurationCommand({ Bucket: s3.bucket }));

      // Assess
      expect(rules.Rules).toEqual([
        expect.objectContaining({
          ID: 'envelopes',
          Filter: { Prefix: 'immortal-lambda/envelopes/' },
          Status: 'Enabled',
          Expiration: { Days: 7 },
        }),
      ]);
      await expect(none).rejects.toMatchObject({ name: 'NoSuchLifecycleConfiguration' });
      expect(ruled.audit).toContainEqual(
        expect.objectContaining({ action: 's3:GetLifecycleConfiguration', resource: 'arn:aws:s3:::ruled' }),
      );
    } finally {
      await ruled.stop();
    }
  });
});
