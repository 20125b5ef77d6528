import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { canSharePort, Listeners, SHARED_LISTENERS } from '../../src/plane/listeners.js';
import { LocalControlPlane } from '../../src/plane.js';
import { type LocalS3, startS3 } from '../../src/s3.js';

/**
 * The sockets listening on `port`, as the kernel reports them: for each, its backlog (`ss`: a
 * listening socket's Send-Q is its backlog).
 */
function listening(port: number): number[] {
  const lines = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' })
    .trim()
    .split('\n');
  const backlogs = lines.filter(Boolean).map((line) => Number(line.trim().split(/\s+/)[2]));
  if (backlogs.length === 0 || !backlogs.every(Number.isInteger))
    throw new Error(`ss did not list a socket listening on ${port}: "${lines.join(' / ')}"`);
  return backlogs;
}

const portOf = (url: string) => Number(new URL(url).port);
const get = (port: number) =>
  new Promise<string>((resolve, reject) =>
    request({ host: '127.0.0.1', port, agent: false }, (answer) => {
      let body = '';
      answer.on('data', (chunk) => (body += chunk));
      answer.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end(),
  );

describe("the plane's servers under a burst of connections", () => {
  let plane: LocalControlPlane | undefined;
  let s3: LocalS3 | undefined;
  let listeners: Listeners | undefined;
  afterEach(async () => {
    await plane?.stop();
    await s3?.stop();
    await listeners?.close();
    plane = undefined;
    s3 = undefined;
    listeners = undefined;
  });

  // Node listens with a backlog of 511: a burst of a thousand sandboxes connecting at once would
  // see the kernel drop half their handshakes, and wait a second or more for each retransmission.
  it('lets more connections wait than Node does by default, on ECS/Lambda/SQS and on S3, over as many sockets as this Node can share', async () => {
    // Prepare
    plane = new LocalControlPlane();
    s3 = await startS3();

    // Act
    const planeUrl = await plane.start();

    // Assess
    const sockets = canSharePort() ? SHARED_LISTENERS : 1;
    for (const port of [portOf(planeUrl), portOf(s3.endpoint)]) {
      const backlogs = listening(port);
      expect(backlogs).toHaveLength(sockets);
      for (const backlog of backlogs) expect(backlog).toBeGreaterThanOrEqual(1_024);
    }
  });

  // On a Node that cannot share a port (before 22.12), one socket.
  it('answers on every socket of the port, and closes them all', async () => {
    // Prepare
    listeners = await Listeners.open((_request, response) => response.end('served'), 0, '127.0.0.1');
    const { port } = listeners;

    // Act
    const answers = await Promise.all(Array.from({ length: 40 }, () => get(port)));
    await listeners.close();

    // Assess
    expect(listeners.count).toBe(canSharePort() ? SHARED_LISTENERS : 1);
    expect(new Set(answers)).toEqual(new Set(['served']));
    await expect(get(port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('refuses a port another server holds, even one that shares its own', async () => {
    // Prepare
    listeners = await Listeners.open((_request, response) => response.end('first'), 0, '127.0.0.1');

    // Act
    const second = Listeners.open(
      (_request, response) => response.end('second'),
      listeners.port,
      '127.0.0.1',
    );

    // Assess
    await expect(second).rejects.toThrow(/EADDRINUSE/);
    expect(await get(listeners.port)).toBe('first');
  });

  it.each([
    ['22.12.0', 'linux', true],
    ['22.11.0', 'linux', false],
    ['23.0.0', 'linux', false],
    ['23.1.0', 'linux', true],
    ['24.0.0', 'linux', true],
    ['20.20.2', 'linux', false],
    ['24.0.0', 'darwin', false],
  ] as const)('shares a port on Node %s on %s: %s', (version, platform, shared) => {
    expect(canSharePort(version, platform)).toBe(shared);
  });
});
