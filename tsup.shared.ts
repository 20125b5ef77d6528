import type { Options } from 'tsup';

/**
 * The build every package shares: ESM and CommonJS with type declarations for the library
 * entries, ESM only for CLIs, AWS SDK and workspace packages left external.
 */
export function packageBuild(
  library: Record<string, string>,
  cli?: Record<string, string>,
  external: (string | RegExp)[] = [],
): Options[] {
  const common: Options = {
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    external: [/^@aws-sdk\//, /^@immortal-lambda\//, '@middy/core', ...external],
  };
  const builds: Options[] = [
    { ...common, entry: library, format: ['esm', 'cjs'], dts: true, clean: true, shims: true },
  ];
  if (cli) builds.push({ ...common, entry: cli, format: ['esm'] });
  return builds;
}
