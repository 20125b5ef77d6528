import type { Plugin } from 'esbuild';
import { defineConfig, type Options } from 'tsup';
import { packageBuild } from '../../tsup.shared';

// The protocol is bundled from its sources, so that a handler's import loads only what it uses at
// init (the protocol's basics: names, defaults, errors, the journal), and spares the import a
// second package resolution (about 1.5 ms of a cold start).
const bundled: Options = {
  treeshake: true,
  clean: false,
  noExternal: [/^@immortal-lambda\/protocol/],
  esbuildOptions(esbuild) {
    esbuild.alias = {
      '@immortal-lambda/protocol/basics': '../protocol/src/basics.ts',
      '@immortal-lambda/protocol/destinations': '../protocol/src/destinations.ts',
      '@immortal-lambda/protocol/sqs': '../protocol/src/sqs.ts',
      '@immortal-lambda/protocol': '../protocol/src/index.ts',
    };
  },
};

// The handoff module (envelope, S3, RunTask, outcome record) stays a file of its own, imported on
// the first handoff: `./handoff.js` from the ESM build, `./handoff.cjs` from the CommonJS one.
const handoffApart: Plugin = {
  name: 'handoff-apart',
  setup(build) {
    // tsup builds both formats as ESM and converts one to CommonJS afterwards; it names the format
    // it is building in TSUP_FORMAT.
    const file = build.initialOptions.define?.TSUP_FORMAT === '"cjs"' ? './handoff.cjs' : './handoff.js';
    build.onResolve({ filter: /^\.\/handoff\.js$/ }, () => ({ path: file, external: true }));
  },
};

// Three builds. What a wrapped handler imports is one file per entry (index, middy), with
// everything it runs at init: each further file cost about 0.4 ms of a cold start. The handoff
// module is a bundle of its own beside them, with its own copy of what it shares with them (the
// error classes compare by kind, so copies are the same class to `instanceof`). The `protocol`
// entry re-exports the installed @immortal-lambda/protocol itself (the same objects as importing
// it). The status and safety-net functions run in functions of their own, with the installed
// protocol.
export default defineConfig([
  ...packageBuild({ index: 'src/index.ts', middy: 'src/middy.ts', handoff: 'src/handoff.ts' }).map(
    (options) => ({
      ...options,
      ...bundled,
      // Without splitting, each entry is a bundle of its own; only the public entries have types.
      splitting: false,
      dts: { entry: { index: 'src/index.ts', middy: 'src/middy.ts' } },
      esbuildPlugins: [handoffApart],
    }),
  ),
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
