import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type Dashboard, startDashboard } from '../../src/dashboard.js';
import { NoLauncher } from '../../src/launcher.js';
import { LocalControlPlane } from '../../src/plane.js';

describe('the dashboard server', () => {
  let plane: LocalControlPlane;
  let dashboard: Dashboard;

  afterEach(async () => {
    await dashboard?.close();
    await plane?.stop();
  });

  /** The session's token, as the dashboard's own page holds it. */
  const tokenOf = async () =>
    /name="immortal-token" content="([0-9a-f]+)"/.exec(await (await fetch(dashboard.url)).text())?.[1] ?? '';

  /** A request with the Host header given, which fetch does not let a caller set. */
  const withHost = (host: string, path: string) =>
    new Promise<number>((resolve, reject) => {
      const { port } = new URL(dashboard.url);
      const sent = request({ host: '127.0.0.1', port: Number(port), path, headers: { host } }, (answer) => {
        answer.resume();
        resolve(answer.statusCode ?? 0);
      });
      sent.on('error', reject);
      sent.end();
    });

  const start = async (invokeAgain?: (requestId: string) => Promise<void>) => {
    plane = new LocalControlPlane({ launcher: new NoLauncher() });
    await plane.start();
    dashboard = await startDashboard(plane, invokeAgain ? { invokeAgain } : {});
  };

  it('invokes again through the page only where the caller can (the dev loop)', async () => {
    // Prepare
    const asked: string[] = [];
    await start(async (requestId) => {
      asked.push(requestId);
    });

    // Act
    const answer = await fetch(`${dashboard.url}/api/invoke/req-7`, {
      method: 'POST',
      headers: { 'x-immortal-token': await tokenOf() },
    });
    const state = (await (await fetch(`${dashboard.url}/api/state`)).json()) as { canInvoke: boolean };

    // Assess
    expect(answer.status).toBe(202);
    expect(asked).toEqual(['req-7']);
    expect(state.canInvoke).toBe(true);
  });

  it('refuses, for any other origin, a read, an action without the token, and a rebound host name', async () => {
    // Prepare
    const asked: string[] = [];
    await start(async (requestId) => {
      asked.push(requestId);
    });
    const token = await tokenOf();

    // Act
    const noToken = await fetch(`${dashboard.url}/api/invoke/req-7`, { method: 'POST' });
    const otherOrigin = await fetch(`${dashboard.url}/api/invoke/req-7`, {
      method: 'POST',
      headers: { origin: 'http://attacker.example', 'x-immortal-token': token },
    });
    const crossRead = await fetch(`${dashboard.url}/api/state`, {
      headers: { origin: 'http://attacker.example' },
    });
    const rebound = await withHost(`attacker.example:${new URL(dashboard.url).port}`, '/api/state');

    // Assess
    expect([noToken.status, otherOrigin.status, crossRead.status, rebound]).toEqual([403, 403, 403, 403]);
    expect(await noToken.text()).toMatch(/needs the session's token/);
    expect(asked).toEqual([]);
  });

  it('refuses to invoke without a way to, and says how to get one', async () => {
    // Prepare
    await start();

    // Act
    const answer = await fetch(`${dashboard.url}/api/invoke/req-7`, {
      method: 'POST',
      headers: { 'x-immortal-token': await tokenOf() },
    });

    // Assess
    expect(answer.status).toBe(409);
    expect(await answer.text()).toContain('immortal-local dev --ui');
  });

  it("shows the Lambda leg's lines under their request id, and serves one HTML page", async () => {
    // Prepare
    await start();

    // Act
    dashboard.lambdaLine('req-9', '{"message":"step 1 done"}');
    const state = (await (await fetch(`${dashboard.url}/api/state`)).json()) as {
      invocations: { requestId: string; logs: { source: string; line: string }[] }[];
    };
    const page = await fetch(dashboard.url);

    // Assess
    expect(state.invocations).toEqual([
      expect.objectContaining({
        requestId: 'req-9',
        logs: [{ source: 'lambda', line: '{"message":"step 1 done"}' }],
      }),
    ]);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<html lang="en">');
  });
});
