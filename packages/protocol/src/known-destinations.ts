import { DestinationError } from './destination-record.js';
import type { Destinations, KnownDestinations } from './destinations.js';

/**
 * Reads `FARGATE_FALLBACK_DESTINATIONS`: unset or empty is `undefined` (Lambda is asked); a value
 * that is not an object of qualifiers, each with ARNs for `onSuccess` and `onFailure` only, throws.
 *
 * @example
 * ```ts
 * import { parseKnownDestinations } from '@immortal-lambda/protocol/destinations';
 * const known = parseKnownDestinations(process.env.FARGATE_FALLBACK_DESTINATIONS);
 * ```
 */
export function parseKnownDestinations(text: string | undefined): KnownDestinations | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const wrong = (why: string) =>
    new DestinationError(
      `FARGATE_FALLBACK_DESTINATIONS is not the destinations the construct writes (${why}): use {"$LATEST":{"onSuccess":"arn:…","onFailure":"arn:…"}, "<alias>":{…}}, or unset it to ask Lambda`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw wrong(`not JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw wrong('not an object');
  const known: Record<string, Destinations> = Object.create(null);
  for (const [qualifier, entry] of Object.entries(parsed)) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      throw wrong(`${qualifier} is not an object`);
    const destinations: { onSuccess?: string; onFailure?: string } = {};
    for (const [key, arn] of Object.entries(entry)) {
      if ((key !== 'onSuccess' && key !== 'onFailure') || typeof arn !== 'string' || !arn.startsWith('arn:'))
        throw wrong(`${qualifier}.${key} is ${JSON.stringify(arn)}`);
      destinations[key] = arn;
    }
    known[qualifier] = destinations;
  }
  return known;
}
