import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { handlerProblem } from '@immortal-lambda/middleware/protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandlerLoadError } from '../../src/errors.js';
import { loadHandler, splitHandler } from '../../src/handler-loader.js';

let parent: string;
let root: string;

beforeAll(() => {
  // parent/task holds the code; parent/x/evil.js and parent/task2/evil.js lie outside it.
  parent = mkdtempSync(join(tmpdir(), 'handlers-'));
  root = join(parent, 'task');
  for (const folder of [join(root, 'a', 'b'), join(parent, 'x'), join(parent, 'task2')])
    mkdirSync(folder, { recursive: true });
  const module = (marker: string) => `exports.handler = async () => '${marker}';`;
  writeFileSync(join(root, 'index.js'), module('inside'));
  writeFileSync(join(root, 'a', 'b', 'deep.js'), module('deep'));
  writeFileSync(join(parent, 'x', 'evil.js'), module('evil'));
  writeFileSync(join(parent, 'task2', 'evil.js'), module('evil'));
  symlinkSync(join(parent, 'x', 'evil.js'), join(root, 'linked.js'));
});

afterAll(() => {
  rmSync(parent, { recursive: true, force: true });
});

describe('loadHandler keeps the handler module inside the task root', () => {
  it('refuses a module that a link in the task root leads outside', async () => {
    await expect(loadHandler(root, 'linked.handler')).rejects.toThrow(/resolves to .*evil.js, outside/);
  });

  it('loads a nested module inside the root', async () => {
    const handler = await loadHandler(root, 'a/b/deep.handler');
    expect(await handler({}, {}, undefined)).toBe('deep');
  });

  it('property: any handler string is refused or loads a module inside the root', async () => {
    const part = fc.constantFrom(
      '..',
      '.',
      '',
      'a',
      'b',
      'x',
      'task',
      'task2',
      'index',
      'deep',
      'evil',
      'linked',
    );
    const handler = fc
      .tuple(
        fc.constantFrom('', '/', '../', './'),
        fc.array(part, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('handler', 'constructor', 'toString', 'nope'),
      )
      .map(([lead, parts, name]) => `${lead}${parts.join('/')}.${name}`);
    await fc.assert(
      fc.asyncProperty(handler, async (text) => {
        try {
          const loaded = await loadHandler(root, text);
          // Loaded: the string was accepted and names a module inside the root.
          expect(handlerProblem(text)).toBeUndefined();
          const { modulePath } = splitHandler(text);
          expect(resolve(root, modulePath).startsWith(root + sep)).toBe(true);
          expect(await loaded({}, {}, undefined)).not.toBe('evil');
        } catch (error) {
          expect(error).toBeInstanceOf(HandlerLoadError);
        }
      }),
      { numRuns: 400 },
    );
  });
});
