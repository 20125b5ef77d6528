import { randomBytes } from 'node:crypto';

/** The parts of an `X-Amzn-Trace-Id` header the runner continues. */
export interface TraceContext {
  root: string;
  parent: string | undefined;
  sampled: boolean;
}

/**
 * Reads `Root=1-…;Parent=…;Sampled=1` (Lambda's `_X_AMZN_TRACE_ID`, carried in the envelope), or
 * undefined when there is no root.
 *
 * @example
 * ```ts
 * import { parseTraceHeader } from '@immortal-lambda/runner';
 * parseTraceHeader('Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1');
 * ```
 */
export function parseTraceHeader(header: string | undefined): TraceContext | undefined {
  if (!header) return undefined;
  const fields = new Map(
    header.split(';').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const root = fields.get('Root');
  if (!root || !/^1-[0-9a-f]{8}-[0-9a-f]{24}$/.test(root)) return undefined;
  const parent = fields.get('Parent');
  return {
    root,
    parent: parent && /^[0-9a-f]{16}$/.test(parent) ? parent : undefined,
    sampled: fields.get('Sampled') === '1',
  };
}

/**
 * The runner's leg as an X-Ray segment of the invocation's own trace: the function's name, the
 * Lambda segment as its parent, the request id, task and outcome as annotations, an error or
 * fault flag when the run did not succeed.
 *
 * @example
 * ```ts
 * import { parseTraceHeader, runnerSegment } from '@immortal-lambda/runner';
 * const segment = runnerSegment({ trace, functionName: 'report', requestId, taskArn, outcome: 'success', startedAt, endedAt });
 * ```
 */
export function runnerSegment(input: {
  trace: TraceContext;
  functionName: string;
  requestId: string;
  taskArn: string | undefined;
  attempt: number;
  outcome: string;
  exitCode: number;
  startedAt: number;
  endedAt: number;
  id?: string;
}): Record<string, unknown> {
  const failed = input.exitCode !== 0;
  return {
    name: input.functionName,
    id: input.id ?? randomBytes(8).toString('hex'),
    trace_id: input.trace.root,
    ...(input.trace.parent ? { parent_id: input.trace.parent } : {}),
    start_time: input.startedAt / 1000,
    end_time: input.endedAt / 1000,
    origin: 'AWS::ECS::Container',
    ...(failed ? (input.exitCode === 1 ? { error: true } : { fault: true }) : {}),
    annotations: {
      request_id: input.requestId,
      outcome: input.outcome,
      attempt: input.attempt,
      runtime: 'fargate',
    },
    metadata: { 'immortal-lambda': { taskArn: input.taskArn ?? null, exitCode: input.exitCode } },
    ...(input.taskArn ? { aws: { ecs: { task_arn: input.taskArn } } } : {}),
  };
}

/**
 * The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS` (`host:port`, or `tcp:… udp:host:port`),
 * or undefined when none is configured.
 *
 * @example
 * ```ts
 * import { daemonAddress } from '@immortal-lambda/runner';
 * daemonAddress('127.0.0.1:2000'); // { host: '127.0.0.1', port: 2000 }
 * ```
 */
export function daemonAddress(value: string | undefined): { host: string; port: number } | undefined {
  if (!value?.trim()) return undefined;
  const udp = value.split(/\s+/).find((part) => part.startsWith('udp:')) ?? value.split(/\s+/)[0] ?? '';
  const match = /^(?:udp:|tcp:)?([^:\s]+):(\d{1,5})$/.exec(udp.trim());
  if (!match) return undefined;
  return { host: match[1] as string, port: Number(match[2]) };
}

/**
 * Sends a segment to the X-Ray daemon over UDP (the daemon's header line, then the document).
 * Never throws, and waits at most a second: tracing never changes how a run ends.
 *
 * @example
 * ```ts
 * import { sendSegment } from '@immortal-lambda/runner';
 * await sendSegment(segment, { host: '127.0.0.1', port: 2000 });
 * ```
 */
export async function sendSegment(
  segment: Record<string, unknown>,
  to: { host: string; port: number },
): Promise<boolean> {
  // Loaded by a traced run only: an untraced one never opens a socket.
  const { createSocket } = await import('node:dgram');
  return new Promise((resolve) => {
    const socket = createSocket(to.host.includes(':') ? 'udp6' : 'udp4');
    const done = (sent: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(sent);
    };
    const timer = setTimeout(() => done(false), 1_000);
    socket.on('error', () => done(false));
    const packet = Buffer.from(
      `${JSON.stringify({ format: 'json', version: 1 })}\n${JSON.stringify(segment)}`,
    );
    socket.send(packet, to.port, to.host, (error) => done(!error));
  });
}
