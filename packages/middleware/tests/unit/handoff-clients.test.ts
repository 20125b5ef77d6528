import { afterEach, describe, expect, it, vi } from 'vitest';

// The rehearsal itself is tested in rehearsal.test.ts; here, which clients the warm-up takes through it.
const rehearsed: { client: unknown; command: string; input: Record<string, unknown> }[] = [];
vi.mock('../../src/handoff/rehearsal.js', () => ({
  rehearse: async (
    client: unknown,
    command: { constructor: { name: string }; input: Record<string, unknown> },
  ) => {
    rehearsed.push({ client, command: command.constructor.name, input: command.input });
  },
}));
const { HandoffClients } = await import('../../src/handoff/clients.js');

const config = {
  cluster: 'jobs',
  taskDefinition: 'immortal-runner:3',
  payloadBucket: 'handoff-payloads',
  outcomePrefix: 'immortal-lambda/outcomes/',
  launchQueue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/launches',
};
const lambdaCredentials = {
  AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'secret',
  AWS_REGION: 'eu-west-1',
};

describe('HandoffClients.warmUp', () => {
  afterEach(() => {
    rehearsed.length = 0;
  });

  it("rehearses each made client's call of this configuration when the credentials are in the environment", async () => {
    // Prepare
    const clients = new HandoffClients(undefined, undefined, undefined, lambdaCredentials);

    // Act
    await clients.warmUp(config);

    // Assess
    expect(rehearsed.map((r) => r.command).sort()).toEqual([
      'PutObjectCommand',
      'RunTaskCommand',
      'SendMessageCommand',
    ]);
    expect(rehearsed.find((r) => r.command === 'RunTaskCommand')?.client).toBe(await clients.ecs('x'));
    expect(rehearsed.map((r) => r.input)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ cluster: 'jobs', taskDefinition: 'immortal-runner:3' }),
        expect.objectContaining({ Bucket: 'handoff-payloads' }),
        expect.objectContaining({ QueueUrl: config.launchQueue }),
      ]),
    );
  });

  it('rehearses only ECS without a bucket or a launch queue', async () => {
    // Prepare
    const clients = new HandoffClients(undefined, undefined, undefined, lambdaCredentials);

    // Act
    await clients.warmUp({ ...config, payloadBucket: undefined, launchQueue: undefined });

    // Assess
    expect(rehearsed.map((r) => r.command)).toEqual(['RunTaskCommand']);
  });

  it('rehearses nothing without credentials in the environment (the chain would ask the instance metadata endpoint)', async () => {
    // Prepare
    const clients = new HandoffClients(undefined, undefined, undefined, { AWS_REGION: 'eu-west-1' });

    // Act
    await clients.warmUp(config);

    // Assess
    expect(rehearsed).toEqual([]);
    await expect(clients.ecs('x')).resolves.toBeDefined();
  });

  it('never takes a given client through a rehearsal', async () => {
    // Prepare
    const given = { send: vi.fn() };
    const clients = new HandoffClients(given as never, given as never, given as never, lambdaCredentials);

    // Act
    await clients.warmUp(config);

    // Assess
    expect(rehearsed).toEqual([]);
    expect(given.send).not.toHaveBeenCalled();
  });
});
