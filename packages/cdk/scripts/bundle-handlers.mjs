// Bundles the safety net's Lambda handlers (watchdog, relaunch, launcher) into dist/handlers/<name>/index.js, as the assets
// FargateFallback deploys: the middleware inside, the AWS SDK left to the Lambda runtime.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
for (const name of ['watchdog', 'relaunch', 'launcher']) {
  await build({
    entryPoints: [join(here, 'handlers', `${name}.ts`)],
    outfile: join(here, 'dist', 'handlers', name, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    external: ['@aws-sdk/*'],
    logLevel: 'warning',
  });
  writeFileSync(join(here, 'dist', 'handlers', name, 'package.json'), '{ "type": "commonjs" }\n');
}
