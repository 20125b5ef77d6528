import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalPlaneError } from '../errors.js';

/** Bundles the handler into `outDir/index.js` (CommonJS, inline source maps), or says why not. */
export async function bundle(
  handlerFile: string,
  outDir: string,
  external: string[],
): Promise<{ ok: true; bytes: number; exports: string[] | undefined } | { ok: false; errors: string }> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw new LocalPlaneError(
      'the dev loop bundles with esbuild: install it next to your handler (npm i -D esbuild)',
      {
        cause: error,
      },
    );
  }
  try {
    const result = await esbuild.build({
      entryPoints: [handlerFile],
      outfile: join(outDir, 'index.js'),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      sourcemap: 'inline',
      external,
      logLevel: 'silent',
      metafile: true,
    });
    writeFileSync(join(outDir, 'package.json'), '{ "type": "commonjs" }\n');
    const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
    return { ok: true, bytes, exports: await exportsOf(esbuild, handlerFile, external) };
  } catch (error) {
    const errors =
      (error as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors ?? [];
    return {
      ok: false,
      errors: errors
        .map((e) => `  ${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`)
        .join('\n'),
    };
  }
}

/**
 * The names the handler file exports, read by esbuild as an ES module (nothing is run), or
 * `undefined` when it cannot tell (a CommonJS file exports only its `module.exports`).
 */
async function exportsOf(
  esbuild: typeof import('esbuild'),
  handlerFile: string,
  external: string[],
): Promise<string[] | undefined> {
  const result = await esbuild.build({
    entryPoints: [handlerFile],
    outdir: 'analysis',
    bundle: true,
    platform: 'node',
    format: 'esm',
    write: false,
    external,
    logLevel: 'silent',
    metafile: true,
  });
  const names = Object.values(result.metafile.outputs).find((output) => output.entryPoint)?.exports ?? [];
  return names.length === 0 || (names.length === 1 && names[0] === 'default') ? undefined : names;
}
