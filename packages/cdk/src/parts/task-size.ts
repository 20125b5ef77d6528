import { FARGATE_SIZES, isFargateSize as isValidMemory } from '@immortal-lambda/protocol';

/** The memory values a CPU value takes, as a reader would write them. */
function describeRange(cpu: number): string {
  const range = FARGATE_SIZES[cpu];
  if (!range) return '';
  if (cpu === 256) return '512, 1024 or 2048 MiB';
  return `${range.min} to ${range.max} MiB in steps of ${range.step}`;
}

/** Every CPU value with the memory it takes: what an error about a size names. */
export function fargateSizes(): string {
  return Object.keys(FARGATE_SIZES)
    .map((cpu) => `cpu ${cpu}: ${describeRange(Number(cpu))}`)
    .join('; ');
}

/**
 * The runner task's size: the given CPU (default 1024) with the given memory, or else the
 * function's memory rounded up to the next value that CPU takes (at least its smallest, at most
 * its largest). A pair Fargate refuses fails the synth, naming the values that would do.
 *
 * @example
 * ```ts
 * taskSize({ functionMemoryMiB: 3008 }); // { cpu: 1024, memoryLimitMiB: 3072 }
 * taskSize({ functionMemoryMiB: 3008, cpu: 4096 }); // { cpu: 4096, memoryLimitMiB: 8192 }
 * ```
 */
export function taskSize(input: {
  functionMemoryMiB: number;
  cpu?: number | undefined;
  memoryLimitMiB?: number | undefined;
}): {
  cpu: number;
  memoryLimitMiB: number;
} {
  const cpu = input.cpu ?? 1024;
  const range = FARGATE_SIZES[cpu];
  if (!range) {
    throw new Error(
      `FargateFallback: cpu ${cpu} is not a Fargate task size; use one of ${Object.keys(FARGATE_SIZES).join(', ')} (${fargateSizes()})`,
    );
  }
  if (input.memoryLimitMiB !== undefined) {
    if (isValidMemory(cpu, input.memoryLimitMiB)) return { cpu, memoryLimitMiB: input.memoryLimitMiB };
    const fits = Object.keys(FARGATE_SIZES)
      .map(Number)
      .filter((other) => isValidMemory(other, input.memoryLimitMiB as number));
    throw new Error(
      `FargateFallback: Fargate does not run ${cpu} CPU units with ${input.memoryLimitMiB} MiB: cpu ${cpu} takes ${describeRange(cpu)}${
        fits.length > 0 ? `, and ${input.memoryLimitMiB} MiB goes with cpu ${fits.join(' or ')}` : ''
      }. Valid pairs: ${fargateSizes()}.`,
    );
  }
  const step = cpu === 256 ? 512 : range.step;
  const rounded = Math.ceil(input.functionMemoryMiB / step) * step;
  let memoryLimitMiB = Math.min(range.max, Math.max(range.min, rounded));
  // 0.25 vCPU has no 1536 MiB: the next value up.
  if (!isValidMemory(cpu, memoryLimitMiB)) memoryLimitMiB = 2048;
  return { cpu, memoryLimitMiB };
}

/** The most memory a relaunch after an out-of-memory kill may have: given (at least the task's), else twice the task's. */
export function memoryCeiling(size: { memoryLimitMiB: number }, given: number | undefined): number {
  if (given === undefined) return size.memoryLimitMiB * 2;
  if (!Number.isInteger(given) || given < size.memoryLimitMiB || given > 120 * 1024) {
    throw new Error(
      `FargateFallback: maxMemoryLimitMiB is ${given}: use a whole number of MiB from the task's memory (${size.memoryLimitMiB}) to Fargate's largest (${120 * 1024})`,
    );
  }
  return given;
}
