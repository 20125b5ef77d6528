// Type-checked by `tsc` (the typecheck task): misspelt option names are compile errors.
import { withFargateFallback } from '../../src/wrapper.js';

const fn = async () => 'done';

// @ts-expect-error: marginMS is not an option (marginMs is)
withFargateFallback(fn, { marginMS: 5_000 });

// @ts-expect-error: cluser is not an option (cluster is)
withFargateFallback(fn, { cluser: 'jobs' });

withFargateFallback(fn, { marginMs: 5_000, cluster: 'jobs' });
