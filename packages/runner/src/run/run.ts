import type { Envelope, Journal, RunnerTimeline } from '@immortal-lambda/protocol';
import type { JournalStore, OutcomeRecorder, TaskMetadata } from '../outcomes.js';
import type { RunnerDependencies } from '../runner.js';
import type { RunnerSettings } from '../settings.js';
import { daemonAddress } from '../trace.js';
import type { HeldBatch } from './held-batch.js';
import { StopWatch } from './stop.js';

/** One structured log line of the runner. */
export type Log = (level: 'INFO' | 'ERROR', message: string, attributes: Record<string, unknown>) => void;

/**
 * One run of the runner: its dependencies, its log, the stop signal, and what it has learnt so
 * far. Each phase adds what it found (the settings, the envelope, the task, the journal, the
 * timeline); the finish reports whatever is known when the run ends, wherever it ended.
 */
export class Run {
  readonly deps: RunnerDependencies;
  readonly startedAt: number;
  /** The task's own X-Ray daemon: read before the handler's environment (Lambda's) is applied. */
  readonly daemon: ReturnType<typeof daemonAddress>;
  readonly stop: StopWatch;
  /** Where the run is: getting the invocation ready, waiting to be told to go (standby), or running it. */
  phase: 'preparing' | 'waiting' | 'running' = 'preparing';
  settings: RunnerSettings | undefined;
  envelope: Envelope | undefined;
  metadata: TaskMetadata = {};
  recorder: OutcomeRecorder | undefined;
  journalStore: JournalStore | undefined;
  /** The journal a relaunch found saved by an earlier attempt. */
  loadedJournal: Journal | undefined;
  /** The journal this attempt starts from: the saved one, else the envelope's. */
  journal: Journal | undefined;
  /** The journal as the handler last changed it. */
  latestJournal: Journal | undefined;
  codeFetchMs: number | undefined;
  codeReadyAt: number;
  /** When a pre-warmed runner was told to go. */
  resumedAt: number | undefined;
  timeline: RunnerTimeline | undefined;
  /** The SQS batch the wrapper held for this run, kept invisible until the run releases it. */
  held: HeldBatch | undefined;

  constructor(deps: RunnerDependencies) {
    this.deps = deps;
    this.startedAt = deps.now();
    this.codeReadyAt = this.startedAt;
    this.daemon = daemonAddress(deps.env.AWS_XRAY_DAEMON_ADDRESS);
    this.stop = new StopWatch(deps.onStop);
  }

  /** The task's ARN, from the ECS task metadata endpoint. */
  get taskArn(): string | undefined {
    return this.metadata.taskArn;
  }

  /** Writes one JSON log line of the runner. */
  log: Log = (level, message, attributes) =>
    this.deps.write(
      JSON.stringify({
        level,
        message,
        timestamp: new Date(this.deps.now()).toISOString(),
        service: 'immortal-runner',
        ...attributes,
      }),
    );

  /** The invocation's ids for a log line, once the envelope is read. */
  ids(): Record<string, string> {
    const { envelope } = this;
    return envelope
      ? {
          requestId: envelope.invocation.awsRequestId,
          functionName: envelope.function.name,
          functionVersion: envelope.function.version,
        }
      : {};
  }
}
