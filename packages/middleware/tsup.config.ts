import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', middy: 'src/middy.ts', protocol: 'src/protocol/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
  external: [/^@aws-sdk\//, '@middy/core'],
});
