import { ECSClient, ListTasksCommand } from '@aws-sdk/client-ecs';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoLauncher } from '../../src/launcher.js';
import { LocalControlPlane } from '../../src/plane.js';

// A plane started as the CLI starts it: every key it hands out signs with one secret of its own.
let plane: LocalControlPlane;
let environment: Record<string, string>;

beforeAll(async () => {
  plane = new LocalControlPlane({ launcher: new NoLauncher(), signingSecret: 'drawn-for-this-run' });
  plane.registerFunction({
    name: 'echo',
    folder: `${import.meta.dirname}/../fixtures/echo`,
    handler: 'index.handler',
  });
  await plane.start();
  environment = plane.environment();
});

afterAll(async () => {
  await plane.stop();
});

const clients = (secretAccessKey: string) => {
  const settings = {
    endpoint: plane.url,
    region: plane.region,
    maxAttempts: 1,
    credentials: { accessKeyId: String(environment.AWS_ACCESS_KEY_ID), secretAccessKey },
  };
  return { ecs: new ECSClient(settings), lambda: new LambdaClient(settings) };
};

describe('a plane with a signing secret', () => {
  it('hands out its secret and serves requests signed with it (JSON and REST, an ARN in the path)', async () => {
    // Prepare
    const { ecs, lambda } = clients(String(environment.AWS_SECRET_ACCESS_KEY));

    // Act
    const listed = await ecs.send(new ListTasksCommand({ cluster: 'local' }));
    const fn = await lambda.send(
      new GetFunctionCommand({
        FunctionName: 'arn:aws:lambda:eu-west-1:123456789012:function:echo',
        Qualifier: '1',
      }),
    );

    // Assess
    expect(environment.AWS_SECRET_ACCESS_KEY).toBe('drawn-for-this-run');
    expect(listed.taskArns).toEqual([]);
    expect(fn.Configuration?.FunctionName).toBe('echo');
  });

  it('refuses a request signed with another secret, before doing anything', async () => {
    // Prepare
    const { ecs } = clients('S3RVER');
    const before = plane.calls.length;

    // Act
    const listing = ecs.send(new ListTasksCommand({ cluster: 'local' }));

    // Assess
    await expect(listing).rejects.toMatchObject({
      name: 'InvalidSignatureException',
      message: expect.stringMatching(/the signature does not match/),
    });
    expect(plane.calls.length).toBe(before);
  });

  it('refuses what a web page can send: an unsigned POST and an unsigned GET', async () => {
    // Act
    const post = await fetch(plane.url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.RunTask' },
      body: '{"taskDefinition":"immortal-runner","overrides":{}}',
    });
    const get = await fetch(`${plane.url}/2015-03-31/functions/echo`);

    // Assess
    expect(post.status).toBe(403);
    expect(post.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(get.status).toBe(403);
    expect(plane.tasks()).toEqual([]);
  });
});
