import { describe, expect, it, vi } from 'vitest';
import * as first from '../../src/index.js';

/** A second copy of the package's classes, as a bundle or the other module format would hold. */
async function anotherCopy(): Promise<typeof first> {
  vi.resetModules();
  return import('../../src/index.js');
}

describe('error classes', () => {
  it('name their errors after their kind', () => {
    // Act
    const errors = [
      new first.ImmortalLambdaError('x'),
      new first.EnvelopeError('x', ['a field']),
      new first.StepError('x'),
      new first.DestinationError('x'),
    ];

    // Assess
    expect(errors.map((error) => error.name)).toEqual([
      'ImmortalLambdaError',
      'EnvelopeError',
      'StepError',
      'DestinationError',
    ]);
    expect(String(errors[2]?.stack)).toMatch(/^StepError: x/);
  });

  it('recognise an error made by another copy of the same class, and of its subclasses', async () => {
    // Prepare
    const second = await anotherCopy();

    // Act
    const stepError = new second.StepError('step "load" was already used');

    // Assess
    expect(second.StepError).not.toBe(first.StepError);
    expect(stepError).toBeInstanceOf(first.StepError);
    expect(stepError).toBeInstanceOf(first.ImmortalLambdaError);
    expect(new first.EnvelopeError('x')).toBeInstanceOf(second.EnvelopeError);
    expect(new first.EnvelopeError('x')).toBeInstanceOf(second.ImmortalLambdaError);
  });

  it('tell different kinds apart, across copies and within one', async () => {
    // Prepare
    const second = await anotherCopy();

    // Act
    const envelopeError = new second.EnvelopeError('x');

    // Assess
    expect(envelopeError instanceof first.StepError).toBe(false);
    expect(new first.EnvelopeError('x') instanceof first.StepError).toBe(false);
    expect(new first.ImmortalLambdaError('x') instanceof second.EnvelopeError).toBe(false);
    expect(new Error('x') instanceof first.ImmortalLambdaError).toBe(false);
    expect(Object.assign(new Error('x'), { name: 'StepError' }) instanceof first.StepError).toBe(false);
    expect((null as unknown) instanceof first.ImmortalLambdaError).toBe(false);
  });

  it('let a subclass declared elsewhere take part by declaring its kind', async () => {
    // Prepare
    const second = await anotherCopy();
    class QuotaError extends first.ImmortalLambdaError {
      static override readonly [first.ERROR_KIND] = 'QuotaError';
    }
    class Undeclared extends first.ImmortalLambdaError {}

    // Act
    const quota = new QuotaError('over quota');
    const undeclared = new Undeclared('x');

    // Assess
    expect(quota.name).toBe('QuotaError');
    expect(quota).toBeInstanceOf(second.ImmortalLambdaError);
    expect(quota instanceof second.StepError).toBe(false);
    expect(undeclared.name).toBe('ImmortalLambdaError');
    expect(undeclared).toBeInstanceOf(Undeclared);
    expect(undeclared).toBeInstanceOf(second.ImmortalLambdaError);
  });
});
