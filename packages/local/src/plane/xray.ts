import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

/**
 * A local X-Ray daemon: takes the segments runner tasks send over UDP (the daemon's header line,
 * then the segment document) and keeps them, so that a run's trace can be checked and shown.
 */
export class XrayDaemon {
  readonly segments: Record<string, unknown>[] = [];
  #socket: Socket | undefined;
  #address: string | undefined;

  /** `host:port`, as `AWS_XRAY_DAEMON_ADDRESS` takes it, once started. */
  get address(): string | undefined {
    return this.#address;
  }

  async start(onSegment: (segment: Record<string, unknown>) => void): Promise<string> {
    const socket = createSocket('udp4');
    socket.on('message', (message) => {
      const text = message.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline < 0) return;
      try {
        const header = JSON.parse(text.slice(0, newline)) as { format?: unknown };
        if (header.format !== 'json') return;
        const segment = JSON.parse(text.slice(newline + 1)) as Record<string, unknown>;
        this.segments.push(segment);
        onSegment(segment);
      } catch {
        // Not a segment: the real daemon drops it too.
      }
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    this.#socket = socket;
    this.#address = `127.0.0.1:${(socket.address() as AddressInfo).port}`;
    return this.#address;
  }

  async stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
