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
    const answer = await fetch(`${dashboard.url}/api/invoke/req-7`, { method: 'POST' });
    const state = (await (await fetch(`${dashboard.url}/api/state`)).json()) as { canInvoke: boolean };

    // Assess
    expect(answer.status).toBe(202);
    expect(asked).toEqual(['req-7']);
    expect(state.canInvoke).toBe(true);
  });

  it('refuses to invoke without a way to, and says how to get one', async () => {
    // Prepare
    await start();

    // Act
    const answer = await fetch(`${dashboard.url}/api/invoke/req-7`, { method: 'POST' });

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
