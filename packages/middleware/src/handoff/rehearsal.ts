import { Readable } from 'node:stream';

/** What a client's own `send` uses of it: its middleware stack and its resolved configuration. */
interface ClientParts {
  middlewareStack?: unknown;
  config?: object;
}

/** A command as `send` runs it: its middleware resolved against the client's. */
interface CommandParts {
  resolveMiddleware?: (
    stack: unknown,
    config: object,
    options: undefined,
  ) => (command: unknown) => Promise<unknown>;
}

/**
 * Takes one call of a client through everything its `send` does (endpoint resolution, credentials,
 * signing, serializing the input, parsing an answer) without sending it: the request handler at
 * the end of the stack is replaced, for this call only, by one that answers `answer` at once. A
 * client's first call costs tens of milliseconds of CPU for this alone, most of it compiling the
 * SDK's code; done ahead (`loadAheadMs`), the handoff's own first call pays only for the network.
 *
 * Nothing leaves the process, `send` is not called (a test's mocked client records nothing), and
 * the client is left as it was. Best effort: a client or command of another shape, or any error
 * (no credentials, say), leaves the first call to pay as before.
 *
 * @example
 * ```ts
 * await rehearse(ecsClient, new RunTaskCommand({ cluster: 'jobs', taskDefinition: 'runner' }), '{}');
 * ```
 */
export async function rehearse(client: unknown, command: unknown, answer: string): Promise<void> {
  const { middlewareStack, config } = client as ClientParts;
  const { resolveMiddleware } = command as CommandParts;
  if (middlewareStack === undefined || config === undefined || typeof resolveMiddleware !== 'function')
    return;
  const answering = {
    handle: async () => ({
      response: { statusCode: 200, headers: {}, body: Readable.from([Buffer.from(answer)]) },
    }),
  };
  try {
    const handler = resolveMiddleware.call(
      command,
      middlewareStack,
      { ...config, requestHandler: answering },
      undefined,
    );
    await handler(command);
  } catch {
    // The rehearsal only warms; the real call reports its own errors.
  }
}
