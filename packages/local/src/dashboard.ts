import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_OUTCOME_PREFIX, ENV, isS3Uri, outcomeFolder, parseOutcome } from '@immortal-lambda/protocol';
import { loopbackHosts } from './audit.js';
import { DASHBOARD_PAGE } from './dashboard-page.js';
import type { LocalTask } from './plane/model.js';
import type { LocalControlPlane } from './plane.js';
import type { LocalS3 } from './s3.js';

/** One invocation as the dashboard shows it: its tasks, logs, timeline and end. */
export interface DashboardInvocation {
  requestId: string;
  functionName: string | undefined;
  state: 'running' | 'succeeded' | 'failed' | 'not-needed';
  error: string | undefined;
  event: unknown;
  envelope: unknown;
  /** Epoch ms: the invocation started in Lambda, the handoff began, the runner called the handler, the run ended. */
  times: { startedAt?: number; handoffAt?: number; handlerCalledAt?: number; endedAt?: number };
  relaunches: number;
  tasks: {
    id: string;
    arn: string;
    lastStatus: string;
    stopCode: string | undefined;
    exitCode: number | undefined;
    capacityProvider: string | undefined;
    standby: boolean;
  }[];
  logs: { source: string; line: string }[];
  segments: Record<string, unknown>[];
  /** The outcome records in the payload bucket, and the journal (steps and checkpoint), when read. */
  outcomes: Record<string, unknown>[];
  journal: unknown;
}

type Record_ = Record<string, unknown>;

/**
 * A page on loopback that shows every invocation the local control plane ran: its state, a
 * timeline bar (Lambda, dead time, Fargate), its tasks, its logs from both legs, its envelope,
 * its trace segments, and, where the caller can, a button to invoke it again. It updates live
 * (server-sent events); the page is one HTML document with no build step.
 *
 * @example
 * ```ts
 * import { LocalControlPlane, startDashboard } from '@immortal-lambda/local';
 * const plane = new LocalControlPlane();
 * await plane.start();
 * const dashboard = await startDashboard(plane, { port: 4567 });
 * console.log(dashboard.url);
 * ```
 */
export async function startDashboard(
  plane: LocalControlPlane,
  options: { port?: number; invokeAgain?: (requestId: string) => Promise<void>; s3?: LocalS3 } = {},
): Promise<Dashboard> {
  const dashboard = new Dashboard(plane, options.invokeAgain, options.s3);
  await dashboard.listen(options.port ?? 0);
  return dashboard;
}

/** The dashboard's server and what it has seen. See {@link startDashboard}. */
export class Dashboard {
  readonly #plane: LocalControlPlane;
  readonly #invokeAgain: ((requestId: string) => Promise<void>) | undefined;
  readonly #s3: LocalS3 | undefined;
  readonly #logs = new Map<string, { source: string; line: string }[]>();
  readonly #clients = new Set<ServerResponse>();
  #server: Server | undefined;
  #url: string | undefined;
  /** The session's token: every action must carry it, which only the page this server wrote can. */
  readonly #token = randomBytes(16).toString('hex');
  #hosts: ReadonlySet<string> = new Set();

  constructor(plane: LocalControlPlane, invokeAgain?: (requestId: string) => Promise<void>, s3?: LocalS3) {
    this.#plane = plane;
    this.#invokeAgain = invokeAgain;
    this.#s3 = s3;
    const changed = () => this.#notify();
    plane.on('task-log', ({ task, line }: { task: LocalTask; line: string }) => {
      this.#log(requestIdOf(task), 'runner', line);
    });
    for (const event of ['task-started', 'task-stopped', 'task-state-change', 'trace-segment'])
      plane.on(event, changed);
  }

  /** The page's address, once listening. */
  get url(): string {
    if (!this.#url) throw new Error('the dashboard is not listening');
    return this.#url;
  }

  /** A line of the Lambda leg (the dev loop's harness), shown with the invocation's logs. */
  lambdaLine(requestId: string, line: string): void {
    this.#log(requestId, 'lambda', line);
  }

  /** Every invocation seen, newest first. */
  invocations(): DashboardInvocation[] {
    const byId = new Map<string, LocalTask[]>();
    for (const task of this.#plane.tasks()) {
      const id = requestIdOf(task);
      if (id) byId.set(id, [...(byId.get(id) ?? []), task]);
    }
    for (const id of this.#logs.keys()) if (!byId.has(id)) byId.set(id, []);
    return [...byId.entries()].map(([id, tasks]) => this.#invocation(id, tasks)).reverse();
  }

  async listen(port: number): Promise<void> {
    const server = createServer((request, response) => {
      this.#serve(request, response).catch((error: unknown) => {
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(String(error));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const bound = (server.address() as AddressInfo).port;
    this.#url = `http://127.0.0.1:${bound}`;
    this.#hosts = loopbackHosts(bound);
  }

  async close(): Promise<void> {
    for (const client of this.#clients) client.end();
    this.#clients.clear();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /**
   * Why a request is refused, or undefined: the dashboard answers its own host names only (not a
   * name a page pointed at 127.0.0.1), the API only to its own page's origin, and an action only
   * with the session's token, which a page of another origin cannot read nor send.
   */
  #refusal(request: IncomingMessage): string | undefined {
    const host = String(request.headers.host ?? '');
    if (!this.#hosts.has(host))
      return `the dashboard answers only its own host names, not ${host || 'a request without Host'}`;
    const origin = request.headers.origin;
    const own = [...this.#hosts].map((name) => `http://${name}`);
    if (origin !== undefined && !own.includes(origin))
      return `the dashboard answers its own page only, not ${origin}`;
    if (request.method !== 'GET' && request.headers['x-immortal-token'] !== this.#token)
      return "an action needs the session's token, which the dashboard's own page sends";
    return undefined;
  }

  #log(requestId: string | undefined, source: string, line: string): void {
    if (!requestId) return;
    this.#logs.set(requestId, [...(this.#logs.get(requestId) ?? []), { source, line }]);
    this.#notify();
  }

  #notify(): void {
    for (const client of this.#clients) client.write('event: change\ndata: {}\n\n');
  }

  async #serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://dashboard');
    const refusal = this.#refusal(request);
    if (refusal) {
      response.writeHead(403, { 'content-type': 'text/plain' });
      response.end(refusal);
      return;
    }
    if (request.method === 'GET' && url.pathname === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(DASHBOARD_PAGE.replace('__IMMORTAL_TOKEN__', this.#token));
      return;
    }
    if (request.method === 'GET' && url.pathname === '/api/state') {
      const invocations = await Promise.all(
        this.invocations().map((invocation) => this.#withOutcomes(invocation)),
      );
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify({ canInvoke: Boolean(this.#invokeAgain), invocations }));
      return;
    }
    if (request.method === 'GET' && url.pathname === '/api/events') {
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      response.write('event: change\ndata: {}\n\n');
      this.#clients.add(response);
      request.on('close', () => this.#clients.delete(response));
      return;
    }
    const again = /^\/api\/invoke\/([^/]+)$/.exec(url.pathname);
    if (request.method === 'POST' && again) {
      if (!this.#invokeAgain) {
        response.writeHead(409, { 'content-type': 'text/plain' });
        response.end('this dashboard cannot invoke: run it with `immortal-local dev --ui`');
        return;
      }
      response.writeHead(202, { 'content-type': 'text/plain' });
      response.end('invoking again');
      this.#invokeAgain(decodeURIComponent(again[1] as string)).catch(() => undefined);
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('not found');
  }

  /** The invocation's records and journal from the bucket (the runner's and wrapper's own). */
  async #withOutcomes(invocation: DashboardInvocation): Promise<DashboardInvocation> {
    const s3 = this.#s3;
    if (!s3 || !invocation.functionName) return invocation;
    const folder = outcomeFolder(DEFAULT_OUTCOME_PREFIX, invocation.functionName, invocation.requestId);
    const keys = await s3.keys(folder).catch(() => [] as string[]);
    const texts = await Promise.all(
      keys.map(async (key) => [key, await s3.readText(key).catch(() => undefined)] as const),
    );
    const outcomes = texts
      .map(([, text]) => (text ? parseOutcome(text) : undefined))
      .filter((record) => record !== undefined)
      .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt)) as unknown as Record<string, unknown>[];
    const journal = texts.find(([key]) => key.endsWith('/journal.json'))?.[1];
    return {
      ...invocation,
      outcomes,
      journal: journal ? parse(journal) : (invocation.envelope as { journal?: unknown } | undefined)?.journal,
    };
  }

  #invocation(requestId: string, tasks: LocalTask[]): DashboardInvocation {
    const logs = this.#logs.get(requestId) ?? [];
    const records = logs.map((entry) => parse(entry.line)).filter((r): r is Record_ => r !== undefined);
    const finished = records.filter((r) => r.message === 'immortal-runner finished').at(-1);
    const called = records.filter((r) => r.message === 'Calling the handler').at(-1);
    const timeline = called?.timeline as Record_ | undefined;
    const envelope = envelopeOf(tasks.at(-1));
    const invocation = (envelope as { invocation?: Record_ } | undefined)?.invocation;
    const running = tasks.some((task) => task.lastStatus !== 'STOPPED');
    const outcome = finished?.outcome as string | undefined;
    const state: DashboardInvocation['state'] = running
      ? 'running'
      : outcome === 'success'
        ? 'succeeded'
        : outcome === 'not-needed'
          ? 'not-needed'
          : tasks.length === 0 && !finished
            ? 'running'
            : 'failed';
    const error = (finished?.error as { message?: string } | undefined)?.message;
    const last = tasks.at(-1);
    return {
      requestId,
      functionName: (envelope as { function?: { name?: string } } | undefined)?.function?.name,
      state,
      error:
        state === 'failed'
          ? (error ?? (last?.stoppedReason ? String(last.stoppedReason) : undefined))
          : undefined,
      event: (envelope as { event?: unknown } | undefined)?.event,
      envelope,
      times: {
        ...(typeof invocation?.startedAt === 'number' ? { startedAt: invocation.startedAt } : {}),
        ...(typeof timeline?.handoffAt === 'number'
          ? { handoffAt: timeline.handoffAt }
          : typeof invocation?.handedOffAt === 'number'
            ? { handoffAt: invocation.handedOffAt }
            : {}),
        ...(typeof timeline?.handlerCalledAt === 'number'
          ? { handlerCalledAt: timeline.handlerCalledAt }
          : {}),
        ...(finished?.timestamp ? { endedAt: Date.parse(String(finished.timestamp)) } : {}),
      },
      // A relaunch is a task the watchdog started: its override says which attempt it is.
      relaunches: tasks.filter((task) => Number(task.environment[ENV.attempt] ?? 1) > 1).length,
      tasks: tasks.map((task) => ({
        id: task.id,
        arn: task.arn,
        lastStatus: task.lastStatus,
        stopCode: task.stopCode,
        exitCode: task.exitCode,
        capacityProvider: task.capacityProvider,
        standby: String(task.startedBy ?? '').endsWith('/standby'),
      })),
      logs,
      segments: this.#plane.segments.filter(
        (segment) => (segment.annotations as { request_id?: string } | undefined)?.request_id === requestId,
      ),
      outcomes: [],
      journal: (envelope as { journal?: unknown } | undefined)?.journal,
    };
  }
}

function parse(line: string): Record_ | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record_) : undefined;
  } catch {
    return undefined;
  }
}

/** The invocation a task runs: its `startedBy` is `immortal-lambda/<request id>[/standby]`. */
function requestIdOf(task: LocalTask): string | undefined {
  const match = /^immortal-lambda\/(.+?)(\/standby)?$/.exec(String(task.startedBy ?? ''));
  if (match) return match[1];
  const envelope = envelopeOf(task) as { invocation?: { awsRequestId?: string } } | undefined;
  return envelope?.invocation?.awsRequestId;
}

/** The envelope in a task's override, when inline (an `s3://` one is shown as its address). */
function envelopeOf(task: LocalTask | undefined): unknown {
  const value = task?.environment?.[ENV.envelope];
  if (!value) return undefined;
  if (isS3Uri(value)) return { location: value };
  return parse(value);
}
