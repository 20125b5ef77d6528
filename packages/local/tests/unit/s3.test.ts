import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
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
});
