// The burst's S3, in a process of its own: on AWS, S3 does not run on the machines that answer
// ECS and SQS, so here the emulator (and the front that audits its calls) does not share the
// plane's event loop either. The plane's thread then answers RunTask and SendMessage while S3
// writes the records, each on a core when one is free, instead of one after the other.
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type AuditedCall, startS3 } from '@immortal-lambda/local';
import { measureLoad, type ProcessLoad } from './burst-parts.js';

const SELF = fileURLToPath(import.meta.url);

/** S3 served by a child process: its endpoint, what it spent, and its calls. Ask one thing at a time. */
export interface S3Process {
  endpoint: string;
  /** The process's CPU and worst event-loop delay since it started serving. */
  load(): Promise<ProcessLoad>;
  /** Every call it served so far, as the front audited them. */
  calls(): Promise<AuditedCall[]>;
  /** Stops the emulator, then the process. */
  stop(): Promise<void>;
}

type Request = 'load' | 'calls' | 'stop';

/** Starts `startS3({ bucket })` in a child process and answers once it serves. */
export async function startS3Process(bucket: string): Promise<S3Process> {
  const child = fork(SELF, [bucket], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`the S3 process exited (code ${code})`))),
  );
  // Each request is answered by the child's next message: one request at a time.
  const answer = <T>(request?: Request) => {
    const answered = new Promise<T>((resolve) => child.once('message', (message) => resolve(message as T)));
    if (request) child.send(request);
    return Promise.race([answered, exited]);
  };
  const endpoint = await answer<string>();
  return {
    endpoint,
    load: () => answer<ProcessLoad>('load'),
    calls: () => answer<AuditedCall[]>('calls'),
    stop: async () => {
      if (child.connected) await answer<null>('stop');
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const s3 = await startS3({ bucket: process.argv[2] as string });
  const load = measureLoad();
  process.on('message', async (request: Request) => {
    if (request === 'load') process.send?.(load.stop());
    if (request === 'calls') process.send?.(s3.audit);
    if (request === 'stop') {
      await s3.stop();
      process.send?.(null, () => process.exit(0));
    }
  });
  process.send?.(s3.endpoint);
}
