import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

/**
 * Bundles a test fixture function (tests/fixtures/<name>.ts) as the example functions are
 * bundled, into `folder`, and returns that folder. Keep `folder` inside this package, so that the
 * Lambda side finds the AWS SDK as the runtime would provide it.
 */
export async function bundleFixture(name: string, folder: string): Promise<string> {
  await build({
    entryPoints: [join(import.meta.dirname, '..', 'fixtures', `${name}.ts`)],
    outfile: join(folder, 'index.js'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['@aws-sdk/*'],
    logLevel: 'warning',
  });
  writeFileSync(join(folder, 'package.json'), '{ "type": "commonjs" }\n');
  return folder;
}
