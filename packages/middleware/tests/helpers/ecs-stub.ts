import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the stub does with the next RunTask calls. */
export interface EcsStubBehaviour {
  /** Answer this many RunTask calls with ThrottlingException before succeeding. */
  throttle?: number;
  /** Answer RunTask with a 200 that holds only this failure. */
  failure?: string;
  /** Never answer RunTask. */
  hang?: boolean;
}

export interface RecordedCall {
  action: string;
  body: Record<string, unknown>;
}

/**
 * A loopback endpoint that answers ECS's JSON 1.1 wire protocol for RunTask, ListTasks and
 * StopTask, so the real `@aws-sdk/client-ecs` can be pointed at it with AWS_ENDPOINT_URL_ECS.
 */
export class EcsStub {
  readonly calls: RecordedCall[] = [];
  behaviour: EcsStubBehaviour = {};
  readonly #server: Server;
  readonly #tokens = new Map<string, string>();
  readonly #hanging: ServerResponse[] = [];

  constructor() {
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        response.writeHead(500).end(String(error));
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const response of this.#hanging) response.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  reset(behaviour: EcsStubBehaviour = {}): void {
    this.behaviour = { ...behaviour };
    this.calls.length = 0;
  }

  runTaskCalls(): Record<string, unknown>[] {
    return this.calls.filter((call) => call.action === 'RunTask').map((call) => call.body);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const action =
      String(request.headers['x-amz-target'] ?? '')
        .split('.')
        .pop() ?? '';
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    this.calls.push({ action, body });
    const reply = (status: number, payload: unknown, errorType?: string) => {
      response.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
      });
      response.end(JSON.stringify(payload));
    };
    if (action === 'RunTask') {
      if (this.behaviour.hang) {
        this.#hanging.push(response);
        return;
      }
      if ((this.behaviour.throttle ?? 0) > 0) {
        this.behaviour.throttle = (this.behaviour.throttle ?? 0) - 1;
        reply(400, { __type: 'ThrottlingException', message: 'Rate exceeded' }, 'ThrottlingException');
        return;
      }
      if (this.behaviour.failure) {
        reply(200, { tasks: [], failures: [{ reason: this.behaviour.failure }] });
        return;
      }
      const token = String(body.clientToken ?? randomUUID());
      let taskArn = this.#tokens.get(token);
      if (!taskArn) {
        taskArn = `arn:aws:ecs:eu-west-1:123456789012:task/${String(body.cluster)}/${randomUUID().replaceAll('-', '')}`;
        this.#tokens.set(token, taskArn);
      }
      reply(200, {
        tasks: [{ taskArn, lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' }],
        failures: [],
      });
      return;
    }
    if (action === 'StopTask') {
      reply(200, { task: { taskArn: body.task, lastStatus: 'STOPPED' } });
      return;
    }
    if (action === 'ListTasks') {
      reply(200, { taskArns: [] });
      return;
    }
    reply(
      400,
      { __type: 'UnknownOperationException', message: `the stub does not serve ${action}` },
      'UnknownOperationException',
    );
  }
}
