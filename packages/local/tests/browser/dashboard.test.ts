/// <reference lib="dom" />
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dashboard, startDashboard } from '../../src/dashboard.js';
import { handedOffEnvelope } from '../../src/envelopes.js';
import { ProcessLauncher } from '../../src/launcher.js';
import { LocalControlPlane } from '../../src/plane.js';
import { type LocalS3, startS3 } from '../../src/s3.js';
import { RUNNER_CLI } from '../helpers/runner.js';

const echo = join(import.meta.dirname, '..', 'fixtures', 'echo');
// Screenshots are kept as test artifacts.
const output = join(import.meta.dirname, '..', 'output');
const chromium = execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], {
  encoding: 'utf8',
}).trim();

let plane: LocalControlPlane;
let s3: LocalS3;
let dashboard: Dashboard;
let browser: Browser;
let page: Page;
let ecs: ECSClient;

beforeAll(async () => {
  mkdirSync(output, { recursive: true });
  s3 = await startS3({ bucket: 'dashboard' });
  plane = new LocalControlPlane({
    launcher: new ProcessLauncher({ cli: RUNNER_CLI }),
    s3Endpoint: s3.endpoint,
  });
  plane.registerFunction({
    name: 'echo',
    folder: echo,
    handler: 'index.handler',
    environment: { GREETING: 'hi' },
  });
  await plane.start();
  dashboard = await startDashboard(plane, { s3 });
  ecs = new ECSClient({
    endpoint: plane.url,
    region: plane.region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  browser = await puppeteer.launch({ executablePath: chromium, args: ['--no-sandbox'], headless: true });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(dashboard.url);
});

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await plane?.stop();
  await s3?.stop();
});

/** Hands an invocation of `echo` to the plane, as the wrapper would, and waits for its task. */
async function handOff(requestId: string, event: unknown): Promise<string> {
  const value = JSON.stringify(handedOffEnvelope({ functionName: 'echo', requestId, event }));
  const started = await ecs.send(
    new RunTaskCommand({
      cluster: 'local',
      taskDefinition: 'immortal-runner',
      launchType: 'FARGATE',
      clientToken: requestId,
      startedBy: `immortal-lambda/${requestId}`,
      networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-0000000000000000a'] } },
      overrides: {
        containerOverrides: [
          {
            name: 'runner',
            environment: [
              { name: 'FARGATE_FALLBACK_ENVELOPE', value },
              // The runner records its outcome in the bucket, as the wrapper tells it to.
              { name: 'FARGATE_FALLBACK_BUCKET', value: 'dashboard' },
            ],
          },
        ],
      },
    }),
  );
  const arn = String(started.tasks?.[0]?.taskArn);
  await plane.waitForTask(arn);
  return arn;
}

const row = (requestId: string) => `tr[data-request="${requestId}"]`;

/**
 * Clicks an invocation's "Show" button in the page itself: the page renders its list again on
 * every change the server sends, so a button found from outside may be replaced before the click.
 */
async function clickShow(requestId: string): Promise<void> {
  await page.evaluate((id) => {
    const button = document.querySelector<HTMLButtonElement>(`button[data-show="${id}"]`);
    if (!button) throw new Error(`no Show button for ${id}`);
    button.click();
  }, requestId);
}

describe('the dashboard in a headless browser', () => {
  it('shows a handed-off invocation live, with its task, its logs and its final state', async () => {
    // Act: the page is already open; the invocation happens while it watches
    const arn = await handOff('ui-ok', { n: 1 });
    await page.waitForFunction(
      (selector) => document.querySelector(selector)?.textContent?.includes('succeeded'),
      {},
      row('ui-ok'),
    );
    await clickShow('ui-ok');
    await page.waitForSelector('#d-title');
    // The runner's outcome records come from the bucket once it has written them.
    await page.waitForFunction(() =>
      document.querySelector('#details')?.textContent?.includes('Outcome records'),
    );
    await page.screenshot({ path: join(output, 'dashboard-succeeded.png'), fullPage: true });

    // Assess
    const details = await page.$eval('#details', (element) => element.textContent ?? '');
    expect(details).toContain('ui-ok');
    expect(details).toContain(arn.split('/').pop()?.slice(0, 8));
    expect(details).toMatch(/STOPPED\s*EssentialContainerExited\s*0/);
    expect(details).toContain('"greeting":"hi"');
    expect(details).toContain('immortal-runner finished');
    expect(details).toContain('Outcome records');
    expect(details).toMatch(/"status": "succeeded"/);
    expect(await page.$eval(`${row('ui-ok')} .state`, (element) => element.textContent)).toBe('succeeded');
  });

  it('shows a failing invocation with its error', async () => {
    // Act
    await handOff('ui-fail', { fail: true });
    await page.waitForFunction(
      (selector) => document.querySelector(selector)?.textContent?.includes('failed'),
      {},
      row('ui-fail'),
    );
    await clickShow('ui-fail');
    await page.waitForFunction(() => document.querySelector('#d-title')?.textContent?.includes('ui-fail'));
    await page.screenshot({ path: join(output, 'dashboard-failed.png'), fullPage: true });

    // Assess
    const text = await page.$eval(row('ui-fail'), (element) => element.textContent ?? '');
    expect(text).toContain('failed');
    expect(text).toContain('asked to fail for ui-fail');
  });

  it('can be used by keyboard and reads at a phone width', async () => {
    // Act
    await page.setViewport({ width: 390, height: 844 });
    await page.focus(`button[data-show="ui-ok"]`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#d-title')?.textContent?.includes('ui-ok'));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: join(output, 'dashboard-phone.png'), fullPage: true });
    await page.setViewport({ width: 1280, height: 800 });

    // Assess
    expect(overflow).toBeLessThanOrEqual(0);
  });
});
