import { defineConfig, type Options } from 'tsup';
import { packageBuild } from '../../tsup.shared';

// The protocol is bundled from its sources, so that a handler's import loads only what it uses at
// init (the protocol's basics: names, defaults, errors, the journal) and the envelope, outcome and
// RunTask code load with the first handoff, in the chunk of `src/handoff.ts`. Bundled, it spares
// the import a second package resolution (about 1.5 ms of a cold start).
const bundled: Options = {
  splitting: true,
  treeshake: true,
  clean: false,
  noExternal: [/^@immortal-lambda\/protocol/],
  esbuildOptions(esbuild) {
    esbuild.alias = {
      '@immortal-lambda/protocol/basics': '../protocol/src/basics.ts',
      '@immortal-lambda/protocol/destinations': '../protocol/src/destinations.ts',
      '@immortal-lambda/protocol': '../protocol/src/index.ts',
    };
  },
};

// Three builds: what a wrapped handler imports (the wrapper and the middy adapter share their
// chunks, so that their classes are one); the `protocol` entry, which re-exports the installed
// @immortal-lambda/protocol itself (the same objects as importing it); and the status and
// safety-net functions, which run in functions of their own, with the installed protocol. A handler's import then loads a few
// chunks, not one per combination of five entries.
export default defineConfig([
  ...packageBuild({ index: 'src/index.ts', middy: 'src/middy.ts' }).map((options) => ({
    ...options,
    ...bundled,
  })),
  ...packageBuild({ protocol: 'src/protocol/index.ts' }).map((options) => ({ ...options, clean: false })),
  // The protocol stays external here: its destinations entry brings the SQS, SNS, EventBridge and
  // Lambda clients as its own dependencies.
  ...packageBuild({ status: 'src/status.ts', 'safety-net': 'src/safety-net/index.ts' }).map((options) => ({
    ...options,
    splitting: true,
    treeshake: true,
    clean: false,
  })),
]);
