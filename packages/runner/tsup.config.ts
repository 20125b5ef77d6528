import { defineConfig, type Options } from 'tsup';
import { packageBuild } from '../../tsup.shared';

/**
 * `node:http` taken with `require` instead of `import`: on Node 22 and later an `import` of it
 * makes Node build a module facade that reads every export, and reading its `WebSocket` loads
 * Node's bundled fetch implementation, a cost the runner paid at every start for nothing.
 */
const httpByRequire: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'http-by-require',
  setup(build) {
    build.onResolve({ filter: /^(node:)?http$/ }, ({ namespace }) =>
      // The stand-in module's own `require('node:http')` is left to Node, at run time.
      namespace === 'required'
        ? { path: 'node:http', external: true }
        : { path: 'http', namespace: 'required' },
    );
    build.onLoad({ filter: /.*/, namespace: 'required' }, () => ({
      contents: "module.exports = require('node:http');",
      loader: 'js',
    }));
  },
};

/**
 * In the image's entry, `@aws-sdk/client-lambda` is the same client loaded from a CommonJS bundle
 * of its own, which V8 starts from compiled code (src/standalone/cached-sdk.ts).
 */
const lambdaFromCache: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'lambda-from-cache',
  setup(build) {
    build.onResolve({ filter: /^@aws-sdk\/client-lambda$/ }, () => ({
      path: new URL('./src/standalone/lambda-client.ts', import.meta.url).pathname,
    }));
  },
};

export default defineConfig([
  ...packageBuild({ index: 'src/index.ts' }, { cli: 'src/cli.ts' }),
  // The runner image's entry: the CLI with every dependency in it (the AWS SDK clients, the
  // protocol), so that the image is built from the package's files alone, with no registry.
  {
    entry: { cli: 'src/cli.ts', 'write-code-cache': 'src/standalone/write-code-cache.ts' },
    outDir: 'dist/standalone',
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    noExternal: [/.*/],
    splitting: true,
    sourcemap: false,
    // Less text for Node to read and parse at each start; names are kept for stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
    // tsup would otherwise take every `node:` import before the plugin sees `node:http`.
    removeNodeProtocol: false,
    esbuildPlugins: [httpByRequire, lambdaFromCache],
    // The ESM builds of the SDK; a CommonJS dependency still finds `require` for Node's modules.
    esbuildOptions(options) {
      options.mainFields = ['module', 'main'];
      options.banner = {
        js: "import { createRequire as __immortalRequire } from 'node:module'; const require = __immortalRequire(import.meta.url);",
      };
    },
  },
  // The Lambda client for the entry above, as one CommonJS script: V8 caches compiled code for
  // scripts, and for ES modules only from Node 22 and then for every module of the process.
  {
    entry: { 'lambda-sdk': 'src/standalone/lambda-sdk.ts' },
    outDir: 'dist/standalone',
    format: ['cjs'],
    platform: 'node',
    target: 'node20',
    noExternal: [/.*/],
    sourcemap: false,
    minifyWhitespace: true,
    minifySyntax: true,
    removeNodeProtocol: false,
    esbuildOptions(options) {
      options.mainFields = ['module', 'main'];
      // The SDK's lazy imports (credential providers) become requires within the script.
      options.supported = { ...options.supported, 'dynamic-import': false };
    },
  },
]);
