import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How many connections a listening socket lets wait to be accepted. Node's default, 511, is less
 * than a burst of Lambda sandboxes opens at once: the kernel drops the handshakes past it, and each
 * of those clients waits a second or more for its retransmission, near a handoff's deadline. (The
 * kernel caps it at `net.core.somaxconn`, 4,096 on current kernels.)
 */
export const LISTEN_BACKLOG = 8_192;

/**
 * Listening sockets per server where the port can be shared. Node accepts one connection per
 * listening socket per turn of its event loop (libuv since 1.45), and a turn of a busy plane takes
 * tens of milliseconds: with several sockets on one port, the kernel spreads a burst's connections
 * over them, and each turn accepts one on each.
 */
export const SHARED_LISTENERS = 8;

/**
 * Whether this Node can listen on one port with several sockets (`reusePort`: Node 22.12 and
 * 23.1 onward, on Linux).
 *
 * @example
 * ```ts
 * canSharePort('22.12.0', 'linux'); // true
 * canSharePort('20.20.2', 'linux'); // false
 * ```
 */
export function canSharePort(version = process.versions.node, platform = process.platform): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return (
    platform === 'linux' && (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12))
  );
}

/**
 * One HTTP service on loopback: its listening sockets (several on one port where
 * {@link canSharePort}, one otherwise), each with {@link LISTEN_BACKLOG}.
 *
 * @example
 * ```ts
 * const listeners = await Listeners.open((request, response) => response.end('ok'), 0, '127.0.0.1');
 * console.log(listeners.port);
 * await listeners.close();
 * ```
 */
export class Listeners {
  readonly #servers: Server[];

  private constructor(servers: Server[]) {
    this.#servers = servers;
  }

  /** Listens on `host`:`port` (0: a free port); rejects with the listen error (`EADDRINUSE`, …). */
  static async open(handler: RequestListener, port: number, host: string): Promise<Listeners> {
    const share = canSharePort();
    // A port asked for by number is checked free first: sockets that share a port would join
    // another plane's on it instead of failing.
    if (share && port !== 0) await stop(await listen(createServer(), port, host, false));
    const listeners = new Listeners([await listen(createServer(handler), port, host, share)]);
    if (!share) return listeners;
    const rest = Array.from({ length: SHARED_LISTENERS - 1 }, () => createServer(handler));
    listeners.#servers.push(...rest);
    try {
      await Promise.all(rest.map((server) => listen(server, listeners.port, host, true)));
    } catch (error) {
      await listeners.close();
      throw error;
    }
    return listeners;
  }

  /** The port every socket listens on. */
  get port(): number {
    return ((this.#servers[0] as Server).address() as AddressInfo).port;
  }

  /** How many sockets listen. */
  get count(): number {
    return this.#servers.length;
  }

  /** Ends every connection and stops listening. */
  async close(): Promise<void> {
    await Promise.all(this.#servers.map(stop));
  }
}

function listen(server: Server, port: number, host: string, reusePort: boolean): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG, reusePort }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Ends a server's connections and stops it listening. */
function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
