const GIB = 1024;

/**
 * The task sizes Fargate runs (Linux, X86_64 and ARM64): for each CPU value (CPU units), the
 * memory it accepts, in MiB, from `min` to `max` in steps of `step` (0.25 vCPU takes 512, 1024
 * and 2048 only). 8 and 16 vCPU need platform version 1.4.0. Any other pair is refused when a task
 * definition is registered, or a RunTask overrides it ("No Fargate configuration exists for given
 * values").
 *
 * @example
 * ```ts
 * import { FARGATE_SIZES } from '@immortal-lambda/protocol';
 * const oneVcpu = FARGATE_SIZES[1024]; // { min: 2048, max: 8192, step: 1024 }
 * ```
 */
export const FARGATE_SIZES: Readonly<Record<number, { min: number; max: number; step: number }>> =
  Object.fromEntries(
    (
      [
        // vCPU, memory from, to, in steps of (GiB)
        [0.25, 0.5, 2, 0.5],
        [0.5, 1, 4, 1],
        [1, 2, 8, 1],
        [2, 4, 16, 1],
        [4, 8, 30, 1],
        [8, 16, 60, 4],
        [16, 32, 120, 8],
      ] as const
    ).map(([vcpu, min, max, step]) => [vcpu * 1024, { min: min * GIB, max: max * GIB, step: step * GIB }]),
  );

/**
 * Whether Fargate runs `cpu` CPU units with `memory` MiB.
 *
 * @example
 * ```ts
 * import { isFargateSize } from '@immortal-lambda/protocol';
 * isFargateSize(256, 1536); // false: 0.25 vCPU takes 512, 1024 or 2048 MiB
 * ```
 */
export function isFargateSize(cpu: number, memory: number): boolean {
  const range = FARGATE_SIZES[cpu];
  if (!range || memory < range.min || memory > range.max) return false;
  return cpu === 256 ? [512, 1024, 2048].includes(memory) : (memory - range.min) % range.step === 0;
}

/**
 * The size to start a task again with after it ran out of memory: twice the memory (at most
 * `ceiling` MiB, rounded down to a value Fargate takes), with the least CPU, at least the task's,
 * that runs it. `undefined` when no larger size fits under the ceiling: the same death would
 * only be repeated.
 *
 * @example
 * ```ts
 * import { largerTaskSize } from '@immortal-lambda/protocol';
 * largerTaskSize({ cpu: 1024, memory: 2048 }, 8192); // { cpu: 1024, memory: 4096 }
 * largerTaskSize({ cpu: 1024, memory: 8192 }, 8192); // undefined
 * ```
 */
export function largerTaskSize(
  size: { cpu: number; memory: number },
  ceiling: number,
): { cpu: number; memory: number } | undefined {
  const cpus = Object.keys(FARGATE_SIZES)
    .map(Number)
    .filter((cpu) => cpu >= size.cpu);
  for (let memory = Math.min(size.memory * 2, ceiling); memory > size.memory; memory -= 512) {
    const cpu = cpus.find((each) => isFargateSize(each, memory));
    if (cpu !== undefined) return { cpu, memory };
  }
  return undefined;
}
