// Bundles each example function the way CDK's NodejsFunction does: esbuild, CommonJS, the AWS
// SDK left to the Lambda runtime. Output: dist/<function>/index.js and a package.json that
// marks it CommonJS; a function deployed as a container image gets its Dockerfile beside them
// (the folder is the image's build context).
import { copyFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
for (const name of readdirSync(join(here, 'functions'))) {
  await build({
    entryPoints: [join(here, 'functions', name, 'index.ts')],
    outfile: join(here, 'dist', name, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@aws-sdk/*'],
    logLevel: 'warning',
  });
  // The bundle is CommonJS whatever this package's own module type is, as in a Lambda zip.
  writeFileSync(join(here, 'dist', name, 'package.json'), '{ "type": "commonjs" }\n');
  const dockerfile = join(here, 'functions', name, 'Dockerfile');
  if (existsSync(dockerfile)) copyFileSync(dockerfile, join(here, 'dist', name, 'Dockerfile'));
}

// The deployment the demo runs under: the construct's grants, synthesised, for the local plane to
// enforce. Its packages stay imports (the demo runs where they are installed).
await build({
  entryPoints: [join(here, 'lib', 'deployment.ts')],
  outfile: join(here, 'dist', 'lib', 'deployment.js'),
  bundle: true,
  packages: 'external',
  platform: 'node',
  target: 'node20',
  format: 'esm',
  logLevel: 'warning',
});
writeFileSync(join(here, 'dist', 'lib', 'package.json'), '{ "type": "module" }\n');
