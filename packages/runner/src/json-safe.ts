/** How deep a value is copied before the rest is cut: results are data, not graphs. */
const MAX_DEPTH = 64;

/**
 * A copy of `value` that JSON can carry, its JSON, and what could not be kept, for a handler's result that
 * JSON.stringify refuses: a BigInt becomes its decimal string, a cycle `"[Circular]"`, a
 * `toJSON` or getter that throws `"[Unserializable: <message>]"`. A value JSON already carries is
 * returned as it is, with no problem.
 *
 * @example
 * ```ts
 * import { jsonSafe } from '@immortal-lambda/runner';
 * jsonSafe({ total: 12n }); // { value: { total: '12' }, json: '{"total":"12"}', problem: 'a BigInt was kept as its decimal string' }
 * ```
 */
export function jsonSafe(value: unknown): { value: unknown; json: string | undefined; problem?: string } {
  try {
    return { value, json: JSON.stringify(value) };
  } catch {
    const problems = new Set<string>();
    const copy = clone(value, new WeakSet(), 0, problems);
    return { value: copy, json: JSON.stringify(copy), problem: [...problems].join('; ') };
  }
}

function clone(value: unknown, seen: WeakSet<object>, depth: number, problems: Set<string>): unknown {
  if (typeof value === 'bigint') {
    problems.add('a BigInt was kept as its decimal string');
    return value.toString();
  }
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) {
    problems.add('a cycle was kept as "[Circular]"');
    return '[Circular]';
  }
  if (depth >= MAX_DEPTH) {
    problems.add(`what lies deeper than ${MAX_DEPTH} levels was cut`);
    return '[Too deep]';
  }
  seen.add(value);
  try {
    let current: unknown = value;
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      current = (value as { toJSON: () => unknown }).toJSON();
      if (typeof current !== 'object' || current === null) return clone(current, seen, depth + 1, problems);
    }
    if (Array.isArray(current)) return current.map((item) => clone(item, seen, depth + 1, problems));
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(current as object)) {
      out[key] = clone(
        readProperty(current as Record<string, unknown>, key, problems),
        seen,
        depth + 1,
        problems,
      );
    }
    return out;
  } catch (error) {
    problems.add(`a value could not be read (${(error as Error)?.message ?? String(error)})`);
    return `[Unserializable: ${(error as Error)?.message ?? String(error)}]`;
  } finally {
    seen.delete(value);
  }
}

function readProperty(object: Record<string, unknown>, key: string, problems: Set<string>): unknown {
  try {
    return object[key];
  } catch (error) {
    problems.add(`the property ${key} could not be read (${(error as Error)?.message ?? String(error)})`);
    return `[Unserializable: ${(error as Error)?.message ?? String(error)}]`;
  }
}
