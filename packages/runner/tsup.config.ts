import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared';

export default defineConfig([
  ...packageBuild({ index: 'src/index.ts' }, { cli: 'src/cli.ts' }),
  // The runner image's entry: the CLI with every dependency in it (the AWS SDK clients, the
  // protocol), so that the image is built from the package's files alone, with no registry.
  {
    entry: { cli: 'src/cli.ts' },
    outDir: 'dist/standalone',
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    noExternal: [/.*/],
    splitting: true,
    sourcemap: false,
    // The ESM builds of the SDK; a CommonJS dependency still finds `require` for Node's modules.
    esbuildOptions(options) {
      options.mainFields = ['module', 'main'];
      options.banner = {
        js: "import { createRequire as __immortalRequire } from 'node:module'; const require = __immortalRequire(import.meta.url);",
      };
    },
  },
]);
