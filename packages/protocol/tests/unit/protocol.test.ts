import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_TOKEN_PATTERN,
  clientToken,
  createEnvelope,
  EnvelopeError,
  encodeEnvelope,
  envelopeKey,
  handlerProblem,
  ImmortalLambdaError,
  parseEnvelope,
  STARTED_BY_PATTERN,
  startedBy,
} from '../../src/index.js';

const context = (requestId: string) => ({
  awsRequestId: requestId,
  functionName: 'report',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:report',
  memoryLimitInMB: '1024',
});

describe('the envelope, written and read by the same rules', () => {
  it('property: any JSON event round-trips through encode and parse', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.uuid(), (event, requestId) => {
        const envelope = createEnvelope({
          event,
          context: context(requestId),
          env: { _HANDLER: 'index.handler', AWS_LAMBDA_FUNCTION_VERSION: '3' },
          startedAt: 1_000,
          deadlineAt: 2_000,
          handedOffAt: 1_500,
        });
        const read = parseEnvelope(encodeEnvelope(envelope));
        expect(read.event).toEqual(JSON.parse(JSON.stringify(event)));
        expect(read.function).toMatchObject({ name: 'report', version: '3', handler: 'index.handler' });
      }),
      { numRuns: 300 },
    );
  });

  it('property: what the writer refuses it refuses with an EnvelopeError, a library error', () => {
    fc.assert(
      fc.property(fc.anything(), fc.string(), (event, handler) => {
        const envelope = createEnvelope({
          event,
          context: context('req'),
          env: { _HANDLER: handler },
          startedAt: 1,
          deadlineAt: 2,
          handedOffAt: 1,
        });
        try {
          parseEnvelope(encodeEnvelope(envelope));
        } catch (error) {
          expect(error).toBeInstanceOf(EnvelopeError);
          expect(error).toBeInstanceOf(ImmortalLambdaError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['index.handler', undefined],
    ['src/jobs/report.jobs.run', undefined],
    ['../x/evil.handler', 'climbs out of the task root with ".."'],
    ['sub/../../../x.handler', 'climbs out of the task root with ".."'],
    ['/var/task/index.handler', 'is an absolute path'],
    ['a\\b.handler', 'has a backslash'],
    ['a//b.handler', 'has an empty or "." path part'],
    ['index', 'is not of the form path/to/file.export (for example index.handler)'],
    ['index.a..b', 'has an empty export name'],
  ])('reads the handler %s as %s', (handler, problem) => {
    expect(handlerProblem(handler)).toBe(problem);
  });
});

describe('RunTask rules', () => {
  it('property: client tokens and startedBy marks always fit RunTask', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.nat(20), (requestId, placement) => {
        fc.pre(requestId.length > 0);
        expect(CLIENT_TOKEN_PATTERN.test(clientToken(requestId, placement))).toBe(true);
        expect(STARTED_BY_PATTERN.test(startedBy(requestId))).toBe(true);
      }),
    );
  });

  it('keeps envelope keys short and distinct for long request ids', () => {
    const a = envelopeKey('p/', 'report', `${'x'.repeat(2_000)}a`);
    const b = envelopeKey('p/', 'report', `${'x'.repeat(2_000)}b`);
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThan(300);
  });
});

describe('the names are owned here', () => {
  const packages = join(import.meta.dirname, '..', '..', '..');
  const sources = (folder: string): string[] =>
    readdirSync(folder).flatMap((name) => {
      const path = join(folder, name);
      return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
    });
  const others = readdirSync(packages).filter(
    (name) =>
      name !== 'protocol' && statSync(join(packages, name, 'src'), { throwIfNoEntry: false })?.isDirectory(),
  );

  it.each(others)('%s spells no FARGATE_FALLBACK_ name and no 8192 limit in its code', (name) => {
    const offending: string[] = [];
    for (const file of sources(join(packages, name, 'src'))) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, index) => {
          const code = line.trim();
          if (code.startsWith('*') || code.startsWith('//') || code.startsWith('/*')) return;
          if (/FARGATE_FALLBACK_[A-Z]|\b8192\b/.test(code)) offending.push(`${file}:${index + 1}: ${code}`);
        });
    }
    expect(offending).toEqual([]);
  });
});
