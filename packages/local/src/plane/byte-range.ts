/**
 * The part of an object a `Range` header asks for, as S3 reads it: one range of bytes, `a-b`,
 * `a-` or the last `-n`; the end clamped to the object's size. Undefined when there is no header
 * or it is not one byte range (S3 then answers the whole object); `unsatisfiable` when the range
 * lies past the object's end (S3 answers 416 `InvalidRange`).
 */
export function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const range = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!range || (range[1] === '' && range[2] === '')) return undefined;
  const [, first = '', last = ''] = range;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
