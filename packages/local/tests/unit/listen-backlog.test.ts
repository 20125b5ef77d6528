import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalControlPlane } from '../../src/plane.js';
import { type LocalS3, startS3 } from '../../src/s3.js';

/**
 * The accept queue of the listening socket on `port`, as the kernel reports it (`ss`: a listening
 * socket's Send-Q is its backlog).
 */
function listenBacklog(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const backlog = Number(line.split(/\s+/)[2]);
  if (!Number.isInteger(backlog)) throw new Error(`ss did not list a socket listening on ${port}: "${line}"`);
  return backlog;
}

const portOf = (url: string) => Number(new URL(url).port);

describe("the plane's servers under a burst of connections", () => {
  let plane: LocalControlPlane | undefined;
  let s3: LocalS3 | undefined;
  afterEach(async () => {
    await plane?.stop();
    await s3?.stop();
  });

  // Node listens with a backlog of 511: a burst of a thousand sandboxes connecting at once would
  // see the kernel drop half their handshakes, and wait a second or more for each retransmission.
  it('lets more connections wait to be accepted than Node does by default, on ECS/Lambda/SQS and on S3', async () => {
    // Prepare
    plane = new LocalControlPlane();
    s3 = await startS3();

    // Act
    const planeUrl = await plane.start();

    // Assess
    expect(listenBacklog(portOf(planeUrl))).toBeGreaterThanOrEqual(1_024);
    expect(listenBacklog(portOf(s3.endpoint))).toBeGreaterThanOrEqual(1_024);
  });
});
