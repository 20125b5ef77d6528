import { describe, expect, it } from 'vitest';
import { byteRange } from '../../src/plane/byte-range.js';

describe('byteRange reads a Range header as S3 does', () => {
  it.each([
    ['bytes=-100', 1000, { start: 900, end: 999 }],
    ['bytes=-5000', 1000, { start: 0, end: 999 }],
    ['bytes=10-', 1000, { start: 10, end: 999 }],
    ['bytes=10-19', 1000, { start: 10, end: 19 }],
    ['bytes=990-2000', 1000, { start: 990, end: 999 }],
  ])('%s of %d bytes → %j', (header, size, range) => {
    // Act and Assess
    expect(byteRange(header, size)).toEqual(range);
  });

  it.each([
    ['bytes=1000-', 1000],
    ['bytes=-0', 1000],
  ])('%s of %d bytes is not satisfiable (416)', (header, size) => {
    // Act and Assess
    expect(byteRange(header, size)).toBe('unsatisfiable');
  });

  it.each([[undefined], ['bytes=0-1,5-9'], ['items=0-1'], ['bytes=-'], ['bytes=9-1']])(
    '%s asks for the whole object',
    (header) => {
      // Act and Assess
      expect(byteRange(header, 1000)).toBeUndefined();
    },
  );
});
