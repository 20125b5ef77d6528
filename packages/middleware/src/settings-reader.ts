import { ENV } from '@immortal-lambda/protocol/basics';
import type { FargateFallbackOptions } from './types.js';

export type Options = Record<string, unknown>;
export type Env = Readonly<Record<string, string | undefined>>;

const TRUE = ['true', '1', 'yes'];
const FALSE = ['false', '0', 'no'];

/** What a value is, for a message: `null`, `an array`, `an object`, `a number`, … */
export const kind = (value: unknown) =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'an array'
      : typeof value === 'object'
        ? 'an object'
        : `a ${typeof value}`;

/** A setting that has an option and an environment variable of the same name. */
export type Setting = keyof typeof ENV & keyof FargateFallbackOptions;

/**
 * Reads one setting at a time, its option over its environment variable, collecting every
 * problem, each naming the variable.
 */
export class SettingsReader {
  readonly problems: string[] = [];
  /** The settings whose option had the wrong type: reported already, so not "missing" too. */
  readonly #mistypedNames = new Set<Setting>();
  readonly #options: Options;
  readonly #env: Env;

  constructor(options: Options, env: Env) {
    this.#options = options;
    this.#env = env;
  }

  /** Records a problem with a setting; its variable is named after it. */
  problem(name: Setting, text: string): void {
    this.problems.push(`${text} (${ENV[name]})`);
  }

  /** Records that a required setting is missing, unless its option was of the wrong type. */
  missing(name: Setting, what: string): void {
    if (!this.#mistypedNames.has(name))
      this.problem(name, `${name} is missing: set the "${name}" option or the variable to ${what}`);
  }

  /** The option when given, else the variable; blank counts as unset. */
  #raw(name: Setting): unknown {
    const option = this.#options[name];
    const raw = option !== undefined ? option : this.#env[ENV[name]];
    return typeof raw === 'string' && raw.trim() === '' ? undefined : raw;
  }

  /** Records a problem of type, after which the setting is not reported missing too. */
  #mistyped(name: Setting, text: string): undefined {
    this.#mistypedNames.add(name);
    this.problem(name, text);
    return undefined;
  }

  /** A string setting, trimmed. */
  text(name: Setting): string | undefined {
    const raw = this.#raw(name);
    return typeof raw === 'string' || raw === undefined
      ? raw?.trim()
      : this.#mistyped(name, `${name} must be a string, got ${kind(raw)}`);
  }

  /** A boolean option, or the same words the variable takes: true/false, 1/0, yes/no. */
  flag(name: Setting): boolean | undefined {
    const raw = this.#raw(name);
    if (raw === undefined || typeof raw === 'boolean') return raw;
    if (typeof raw !== 'string')
      return this.#mistyped(name, `${name} must be true or false, got ${kind(raw)}`);
    const value = raw.trim().toLowerCase();
    if (TRUE.includes(value)) return true;
    if (FALSE.includes(value)) return false;
    this.problem(name, `${name} is "${raw}": use true or false`);
    return undefined;
  }

  /**
   * A required string matching one of `accepted` (else it is not `what`); one that matches the
   * `mistaken` pattern is said to be that other kind of value, the usual slip.
   */
  identifier(
    name: Setting,
    accepted: readonly RegExp[],
    what: string,
    [mistaken, mistakenFor]: readonly [RegExp, string],
  ): string | undefined {
    const value = this.text(name);
    if (value === undefined) this.missing(name, what);
    else if (!accepted.some((pattern) => pattern.test(value)))
      this.problem(
        name,
        `${name} "${value}" is ${mistaken.test(value) ? `${mistakenFor}, not` : 'not'} ${what}`,
      );
    return value;
  }

  /**
   * A list (an array of strings, or one comma-separated string), each item matching `pattern`
   * (else it is not `item`), at most `max` of them.
   */
  list(name: Setting, pattern: RegExp, item: string, max: number): string[] {
    const raw = this.#raw(name);
    const items: unknown[] =
      raw === undefined ? [] : typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : [raw];
    const bad = items.find((each) => typeof each !== 'string');
    if (bad !== undefined) {
      this.#mistyped(
        name,
        Array.isArray(raw)
          ? `${name} must hold strings only, got ${kind(bad)}`
          : `${name} must be an array of strings or a comma-separated string, got ${kind(raw)}`,
      );
      return [];
    }
    const list = (items as string[]).map((each) => each.trim()).filter((each) => each !== '');
    for (const each of list) if (!pattern.test(each)) this.problem(name, `"${each}" is not ${item}`);
    if (list.length > max) this.problem(name, `${list.length} ${name} given; RunTask accepts at most ${max}`);
    return list;
  }

  /** One of a few words, compared once `normalize` made it so; `fallback` when unset. */
  oneOf<T extends string>(
    name: Setting,
    words: readonly T[],
    fallback: T,
    normalize: (raw: string) => string,
  ): T {
    const raw = this.text(name);
    if (raw === undefined) return fallback;
    const word = words.find((each) => each === normalize(raw));
    if (word === undefined)
      this.problem(name, `${name} "${normalize(raw)}" is not one of ${words.join(' | ')}`);
    return word ?? fallback;
  }

  /** A whole number of milliseconds (a number, or a string of decimal digits). */
  integer(name: Setting, min: number, max: number): number | undefined {
    const raw = this.#raw(name);
    if (raw === undefined) return undefined;
    const value =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)
          ? Number(raw)
          : Number.NaN;
    if (Number.isInteger(value) && value >= min && value <= max) return value;
    const shown = typeof raw === 'string' || typeof raw === 'number' ? `"${raw}"` : kind(raw);
    this.problem(name, `${name} ${shown} must be a whole number of milliseconds from ${min} to ${max}`);
    return undefined;
  }
}
