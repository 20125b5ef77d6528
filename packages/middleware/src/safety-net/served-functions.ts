import { ENV } from '@immortal-lambda/protocol';
import type { DestinationClients } from '@immortal-lambda/protocol/destinations';
import { type ResolvedConfig, resolveConfig } from '../config.js';
import { ConfigurationError, RelaunchError } from '../errors.js';
import type { FargateFallbackOptions } from '../types.js';
import { destinationsWith } from './destinations.js';

type Env = Readonly<Record<string, string | undefined>>;

/** One served function's settings, as the version that ran was deployed. */
export interface FunctionSettings {
  config: ResolvedConfig;
  /** The function's own variables (empty when the safety net was given one placement). */
  variables: Env;
}

/**
 * Where the safety net takes a function's placement from. Given one (options, or the
 * `FARGATE_FALLBACK_*` placement in its own environment), it serves that function alone, as
 * before; given none, it serves every function of `FARGATE_FALLBACK_FUNCTION_ARN` (a
 * comma-separated list) with the settings each version was deployed with (GetFunctionConfiguration,
 * cached), so that one watchdog and one relaunch function serve a whole cluster.
 */
export class ServedFunctions {
  /** The functions served by name; empty: any (one placement given, no list). */
  readonly names: ReadonlySet<string>;
  /** The ARNs as configured, in order. */
  readonly arns: readonly string[];
  readonly #own: ResolvedConfig | undefined;
  readonly #clients: DestinationClients | undefined;

  constructor(options: FargateFallbackOptions, env: Env, clients: DestinationClients | undefined) {
    this.arns = (env[ENV.failedFunction] ?? '')
      .split(',')
      .map((arn) => arn.trim())
      .filter(Boolean);
    this.names = new Set(this.arns.map(functionNameOf));
    this.#clients = clients;
    const placed = options.taskDefinition !== undefined || Boolean(env[ENV.taskDefinition]?.trim());
    this.#own = placed ? resolveConfig(options, env) : undefined;
    if (!this.#own && this.arns.length === 0) {
      throw new RelaunchError(
        `the safety net has no placement and serves no function: set ${ENV.failedFunction} to the ARNs of the functions it serves (their settings are read from their configuration), or give it one function's ${ENV.cluster}, ${ENV.taskDefinition} and the rest of its placement`,
      );
    }
  }

  /** The one placement the safety net was given, if any. */
  get own(): ResolvedConfig | undefined {
    return this.#own;
  }

  /**
   * Whether a function is one it serves: by name for a name (the watchdog has checked the task's
   * account and region already), by unqualified ARN for an ARN, so that a function of the same name
   * in another account or region is not served.
   */
  serves(functionNameOrArn: string): boolean {
    if (this.arns.length === 0) return true;
    const arn = unqualifiedArn(functionNameOrArn);
    if (!arn) return this.names.has(functionNameOrArn);
    return this.arns.some(
      (served) => (unqualifiedArn(served) ?? served) === arn || served === functionNameOf(arn),
    );
  }

  /** The settings of a version of a served function: the given placement, else its deployed variables. */
  async settingsOf(functionName: string, version: string | undefined): Promise<FunctionSettings> {
    if (this.#own) return { config: this.#own, variables: {} };
    const { module, clients } = await destinationsWith(this.#clients);
    let variables: Record<string, string>;
    try {
      variables = await module.functionVariables(clients.lambda(), functionName, version);
    } catch (error) {
      throw new RelaunchError(
        `the settings of ${functionName}:${version ?? '$LATEST'} cannot be read (GetFunctionConfiguration): ${(error as Error).message}; the safety net's role needs lambda:GetFunctionConfiguration on it (the construct grants it)`,
        { cause: error },
      );
    }
    try {
      return { config: resolveConfig({}, variables), variables };
    } catch (error) {
      const problems = error instanceof ConfigurationError ? error.problems.join('; ') : String(error);
      throw new RelaunchError(
        `${functionName}:${version ?? '$LATEST'} was not deployed with the fallback's settings, so its invocations cannot be started: ${problems}`,
        { cause: error },
      );
    }
  }
}

/** A function ARN without its qualifier, or `undefined` for a name. */
function unqualifiedArn(nameOrArn: string): string | undefined {
  return /^(arn:aws[a-z-]*:lambda:[^:]+:\d+:function:[^:]+)(?::[^:]+)?$/.exec(nameOrArn)?.[1];
}

/** A function's name, from its name or (qualified) ARN. */
export function functionNameOf(nameOrArn: string): string {
  return /:function:([^:]+)/.exec(nameOrArn)?.[1] ?? nameOrArn;
}
