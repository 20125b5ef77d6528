import { existsSync, readFileSync } from 'node:fs';
import type { ChaosEffect } from './chaos-recorder.js';

/** What a chaos run found: work outside `step()` that both legs did, or a checkpoint done again. */
export interface ChaosFinding {
  /** `late`: the Lambda leg did it outside a step after the handoff (`target` names what). */
  kind: 'file' | 'call' | 'checkpoint' | 'late';
  target: string;
  /** The runs (1-based) it was found in. */
  runs: number[];
}

/** The effects noted in a chaos log, by request id. */
export function readChaosLog(log: string): Map<string, ChaosEffect[]> {
  const byRequest = new Map<string, ChaosEffect[]>();
  if (!existsSync(log)) return byRequest;
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const effect = JSON.parse(line) as ChaosEffect;
    byRequest.set(effect.requestId, [...(byRequest.get(effect.requestId) ?? []), effect]);
  }
  return byRequest;
}

/**
 * What one handed-off invocation did twice: each file written and call made outside a step in
 * both legs (a step finished before the handoff is answered from the journal, so only work outside
 * steps can run twice), each checkpoint the runner recorded that Lambda had recorded before the
 * handoff began (the envelope carries that one: the runner did not resume from `lastCheckpoint`),
 * and what the Lambda leg still did outside a step once its receipt was returned (it did not stop
 * when `signal` aborted: on Lambda the sandbox freezes there, and may go on in a later invocation).
 *
 * @example
 * ```ts
 * const twice = doneTwice(readChaosLog(log).get(requestId) ?? [], { handoffBeganAt, handedOffAt });
 * ```
 */
export function doneTwice(
  effects: readonly ChaosEffect[],
  times: { handoffBeganAt: number; handedOffAt: number },
): Pick<ChaosFinding, 'kind' | 'target'>[] {
  const work = (effect: ChaosEffect) => effect.kind !== 'checkpoint' && effect.step === undefined;
  const lambda = effects.filter((effect) => effect.leg === 'lambda');
  const inLambda = lambda.filter((effect) => effect.at <= times.handedOffAt);
  const late = lambda.filter((effect) => effect.at > times.handedOffAt && work(effect));
  const inFargate = effects.filter((effect) => effect.leg === 'fargate');
  const keys = (list: ChaosEffect[]) =>
    new Set(list.filter(work).map((effect) => `${effect.kind} ${effect.target}`));
  const fargateWork = keys(inFargate);
  const twice = [...keys(inLambda)]
    .filter((key) => fargateWork.has(key))
    .map((key) => {
      const [kind, ...target] = key.split(' ');
      return { kind: kind as ChaosFinding['kind'], target: target.join(' ') };
    });
  const states = (list: ChaosEffect[]) =>
    list.filter((effect) => effect.kind === 'checkpoint').map((effect) => effect.target);
  const checkpointed = new Set(states(lambda.filter((effect) => effect.at <= times.handoffBeganAt)));
  const again = [...new Set(states(inFargate).filter((state) => checkpointed.has(state)))];
  return [
    ...twice,
    ...again.map((target) => ({ kind: 'checkpoint' as const, target })),
    ...[...keys(late)].map((target) => ({ kind: 'late' as const, target })),
  ];
}

/** Gathers each run's findings into one list, each with the runs it was found in. */
export function gather(runs: Pick<ChaosFinding, 'kind' | 'target'>[][]): ChaosFinding[] {
  const found = new Map<string, ChaosFinding>();
  runs.forEach((findings, index) => {
    for (const { kind, target } of findings) {
      const key = `${kind} ${target}`;
      const entry = found.get(key) ?? { kind, target, runs: [] };
      entry.runs.push(index + 1);
      found.set(key, entry);
    }
  });
  return [...found.values()];
}

/** A finding as one line of the report, saying what to do about it. */
export function describeFinding(finding: ChaosFinding): string {
  const runs = `run${finding.runs.length === 1 ? '' : 's'} ${finding.runs.join(', ')}`;
  switch (finding.kind) {
    case 'file':
      return `the file ${finding.target} was written outside step() in both legs (${runs}): write it inside a step, or make the write idempotent`;
    case 'call':
      return `the call ${finding.target} was made outside step() in both legs (${runs}): make it inside a step, or give it an idempotency key`;
    case 'checkpoint':
      return `the checkpoint ${finding.target} was recorded in Lambda and again on Fargate (${runs}): resume from lastCheckpoint instead of starting over`;
    default:
      return `the Lambda leg went on after the handoff (${finding.target}, ${runs}): stop when signal aborts; on Lambda the sandbox freezes there and may finish it in a later invocation`;
  }
}
