import { Lazy, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

type Destinations = { onSuccess?: string; onFailure?: string };

/**
 * The invoke config a function, alias or version has in the app (its L1), and the destinations
 * it sets.
 *
 * @example
 * ```ts
 * const onFailure = invokeConfigOf(fn).destinations?.onFailure?.destination;
 * ```
 */
export function invokeConfigOf(target: IConstruct) {
  const config = target.node.tryFindChild('EventInvokeConfig')?.node.defaultChild as
    | lambda.CfnEventInvokeConfig
    | undefined;
  const destinations = config?.destinationConfig as
    | { onSuccess?: { destination: string }; onFailure?: { destination: string } }
    | undefined;
  return { config, destinations };
}

/** The destinations an invoke config of the app sets on a function, alias or version. */
function configured(target: IConstruct): Destinations {
  const given = invokeConfigOf(target).destinations;
  return {
    ...(given?.onSuccess ? { onSuccess: given.onSuccess.destination } : {}),
    ...(given?.onFailure ? { onFailure: given.onFailure.destination } : {}),
  };
}

/**
 * The function's async destinations as the app configures them, by qualifier (`$LATEST` for the
 * function, each alias of the app by its name), as the JSON `FARGATE_FALLBACK_DESTINATIONS`
 * holds. Produced at synth, after every alias exists and the safety net has wired its on-failure
 * destinations: the runner and the watchdog then ask Lambda only of qualifiers not named here
 * (a version invoked by number, an alias made outside the app).
 *
 * @example
 * ```ts
 * runnerContainer.addEnvironment(ENV.destinations, knownDestinations(fn));
 * ```
 */
export function knownDestinations(fn: lambda.Function): string {
  return Lazy.string({
    produce: () => {
      const known: Record<string, Destinations> = { $LATEST: configured(fn) };
      for (const node of Stack.of(fn).node.findAll()) {
        if (node instanceof lambda.Alias && node.version.lambda === fn)
          known[node.aliasName] = configured(node);
      }
      return Stack.of(fn).toJsonString(known);
    },
  });
}
