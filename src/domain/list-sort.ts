import { CustosError } from './errors.js';

/** A list's order as a client asks for it: one of the list's sortable columns, ascending or descending. */
export interface ListSort<K extends string> {
  key: K;
  desc: boolean;
}

/**
 * `sort` and `dir` of a paged list, checked against the columns the list can sort by. The sort is the server's so
 * that page 2 continues page 1's order (a table sorting the rows of one page only was how the console did it until
 * 6 Dec 2026). Without `sort` the list keeps its own order; `dir` alone, or an unknown column, is a 400.
 */
export function parseListSort<K extends string>(
  keys: readonly K[],
  sort: string | null,
  dir: string | null,
  code: string,
): ListSort<K> | undefined {
  const bad = (parameter: string, message: string) =>
    new CustosError({ code, message: `${parameter}: ${message}`, httpStatus: 400, detail: { parameter } });
  if (dir !== null && dir !== 'asc' && dir !== 'desc') throw bad('dir', `must be asc or desc, got '${dir}'`);
  if (sort === null) {
    if (dir !== null) throw bad('dir', 'given without sort');
    return undefined;
  }
  const key = keys.find((k) => k === sort);
  if (!key) throw bad('sort', `'${sort}' is not a sortable column (sortable: ${keys.join(', ')})`);
  return { key, desc: dir === 'desc' };
}
