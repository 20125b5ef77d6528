import { defineConfig, type Options } from 'tsup';
import { packageBuild } from '../../tsup.shared';

// The protocol is bundled from its sources, so that the handler's import loads only what it uses
// at init (the protocol's basics) and the envelope, outcome and RunTask code load with the first
// handoff, in the chunk of `src/handoff.ts`.
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

// Two builds: what a wrapped handler imports (the wrapper, the middy adapter and the protocol
// entry share their chunks, so that their classes are one), and the status and safety-net
// functions, which run in functions of their own. A handler's import then loads a few chunks,
// not one per combination of five entries.
export default defineConfig([
  ...packageBuild({
    index: 'src/index.ts',
    middy: 'src/middy.ts',
    protocol: 'src/protocol/index.ts',
  }).map((options) => ({ ...options, ...bundled })),
  ...packageBuild({
    status: 'src/status.ts',
    'safety-net': 'src/safety-net/index.ts',
  }).map((options) => ({ ...options, ...bundled })),
]);
