// Loaded into both legs of a chaos run (in the dev process for the Lambda leg, with `--import` in
// the runner's process): notes what the handler does to the world (files written, network calls,
// checkpoints) and whether it did it inside a step, one JSON line per effect, in the file named by
// IMMORTAL_CHAOS_LOG. Only work done in the handler's own async context is noted: the library's
// records, the plane, the S3 emulator and the runner's own work are not the handler's.
import { AsyncLocalStorage } from 'node:async_hooks';
import { channel, tracingChannel } from 'node:diagnostics_channel';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { syncBuiltinESMExports } from 'node:module';

/** One thing a handler did, as noted. */
export interface ChaosEffect {
  requestId: string;
  leg: 'lambda' | 'fargate';
  kind: 'file' | 'call' | 'checkpoint';
  /** The file written, the call made (`POST https://host/path`), or the checkpoint's JSON. */
  target: string;
  /** The step it was done in, if any. */
  step?: string;
  at: number;
}

interface Running {
  requestId: string;
  leg: 'lambda' | 'fargate';
  step?: string;
}

const HANDLER = 'immortal-lambda:handler';
const STEP = 'immortal-lambda:step';
const CHECKPOINT = 'immortal-lambda:checkpoint';
const installed = Symbol.for('immortal-lambda.chaos-recorder');

/**
 * Starts noting the handler's effects into `log` (once per process). Hosts of the library's own
 * calls (the plane, the S3 emulator's records under `immortal-lambda/`) are left out.
 */
export function installChaosRecorder(log: string): void {
  const global = globalThis as { [installed]?: boolean };
  if (global[installed]) return;
  global[installed] = true;
  const running = new AsyncLocalStorage<Running>();
  const append = fs.appendFileSync;
  const note = (kind: ChaosEffect['kind'], target: string) => {
    const now = running.getStore();
    if (!now) return;
    const effect: ChaosEffect = { ...now, kind, target, at: Date.now() };
    depth += 1;
    try {
      append(log, `${JSON.stringify(effect)}\n`);
    } finally {
      depth -= 1;
    }
  };
  tracingChannel(HANDLER).start.bindStore(running, (context) => {
    const { runtime, requestId } = context as { runtime: 'lambda' | 'fargate'; requestId: string };
    return { leg: runtime, requestId };
  });
  tracingChannel(STEP).start.bindStore(running, (context) => {
    const outer = running.getStore();
    return outer ? { ...outer, step: (context as { name: string }).name } : (undefined as never);
  });
  channel(CHECKPOINT).subscribe((message) =>
    note('checkpoint', JSON.stringify((message as { state: unknown }).state)),
  );
  patchFiles(note);
  patchCalls(note);
}

type Note = (kind: ChaosEffect['kind'], target: string) => void;

/** How deep in the patched writers the current call is: the recorder's own writes, and nested ones, are not noted. */
let depth = 0;

/** The file writers of `fs` and `fs.promises`, each noting the path it writes. */
function patchFiles(note: Note): void {
  const path = (file: unknown) =>
    typeof file === 'string' ? file : file instanceof URL ? file.pathname : String(file);
  const wrap = <T extends object>(owner: T, names: string[]) => {
    for (const name of names) {
      const original = (owner as Record<string, unknown>)[name];
      if (typeof original !== 'function') continue;
      (owner as Record<string, unknown>)[name] = function (this: unknown, file: unknown, ...rest: unknown[]) {
        // A writer that calls another (appendFileSync calls writeFileSync) is one write.
        if (depth === 0 && typeof file !== 'number') note('file', path(file));
        depth += 1;
        try {
          return original.call(this, file, ...rest);
        } finally {
          depth -= 1;
        }
      };
    }
  };
  wrap(fs, ['writeFile', 'writeFileSync', 'appendFile', 'appendFileSync', 'createWriteStream']);
  wrap(fs.promises, ['writeFile', 'appendFile']);
  syncBuiltinESMExports();
}

/** `http.request`, `https.request` and `fetch`, each noting its method and URL, the library's own left out. */
function patchCalls(note: Note): void {
  const own = (url: URL) =>
    /^(127\.0\.0\.1|localhost|\[::1\])$/.test(url.hostname) &&
    (url.pathname.split('/')[2] === 'immortal-lambda' || ownApi(url));
  const noteCall = (method: string, url: URL) => {
    if (!own(url)) note('call', `${method.toUpperCase()} ${url.origin}${url.pathname}`);
  };
  for (const module of [http, https]) {
    const original = module.request;
    const protocol = module === https ? 'https:' : 'http:';
    (module as { request: unknown }).request = function (this: unknown, ...args: unknown[]) {
      const [first, second] = args;
      const options = (typeof first === 'object' && !(first instanceof URL) ? first : (second ?? {})) as {
        method?: string;
        host?: string;
        hostname?: string;
        port?: number;
        path?: string;
      };
      const url =
        typeof first === 'string' || first instanceof URL
          ? new URL(String(first))
          : new URL(
              `${protocol}//${options.hostname ?? options.host ?? 'localhost'}${options.port ? `:${options.port}` : ''}${options.path ?? '/'}`,
            );
      noteCall(options.method ?? 'GET', url);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof http.request;
  }
  const fetch = globalThis.fetch;
  globalThis.fetch = ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    noteCall(init?.method ?? (input instanceof Request ? input.method : 'GET'), url);
    return fetch(input, init);
  }) as typeof fetch;
  syncBuiltinESMExports();
}

/** The plane's own APIs on loopback (ECS, Lambda, the destinations, code downloads): the library's calls. */
function ownApi(url: URL): boolean {
  return url.pathname === '/' || /^\/(2015-03-31|2019-09-25|2018-10-31|code|v4)\//.test(url.pathname);
}

const log = process.env.IMMORTAL_CHAOS_LOG;
if (log) installChaosRecorder(log);
