import type { SortingState } from '@tanstack/react-table';
import { useState } from 'react';
import { useLocation, useNavigate, useSearchParams } from 'react-router';

/**
 * A list screen's filters, sort and page live in the address bar's query, not in component state: a reload keeps
 * them, the address can be bookmarked or sent to a colleague, and the browser's Back button returns to the
 * previous search (each change is a new history entry). Until 6 Dec 2026 the audit and quarantine screens kept
 * them in memory, and every table its sort.
 *
 * `filterKeys` are the search's parameters, `pageKeys` those of the page within it. The form edits a draft of the
 * filters; `search` puts the draft in the address. When the address changes otherwise (Back, Forward, a link),
 * the draft follows it, so the form always shows the search listed.
 */
export function useListParams(filterKeys: readonly string[], pageKeys: readonly string[]) {
  const [params, setParams] = useSearchParams();
  const filters = Object.fromEntries(
    filterKeys.filter((k) => params.get(k)).map((k) => [k, params.get(k)!]),
  ) as Record<string, string>;
  const [draft, setDraft] = useState(filters);
  const asked = JSON.stringify(filters);
  const [shown, setShown] = useState(asked);
  if (shown !== asked) {
    setShown(asked);
    setDraft(filters);
  }
  const sortKey = params.get('sort');
  const sorting: SortingState = sortKey ? [{ id: sortKey, desc: params.get('dir') === 'desc' }] : [];

  /** Lists what the form holds (empty values dropped), in the same sort, from the first page. */
  const search = () => {
    const next = new URLSearchParams();
    for (const k of filterKeys) if (draft[k]?.trim()) next.set(k, draft[k].trim());
    for (const k of ['sort', 'dir']) if (params.has(k)) next.set(k, params.get(k)!);
    setParams(next);
  };
  /** Moves to another page of the same search: the page parameters given are set, the others dropped. */
  const setPage = (page: Record<string, string>) => {
    const next = new URLSearchParams(params);
    for (const k of pageKeys) next.delete(k);
    for (const [k, v] of Object.entries(page)) next.set(k, v);
    setParams(next);
  };
  /** A new sort starts again at the first page: the page boundaries of the old order mean nothing in the new. */
  const setSorting = (update: SortingState | ((old: SortingState) => SortingState)) => {
    const [s] = typeof update === 'function' ? update(sorting) : update;
    const next = new URLSearchParams(params);
    for (const k of [...pageKeys, 'sort', 'dir']) next.delete(k);
    if (s) {
      next.set('sort', s.id);
      next.set('dir', s.desc ? 'desc' : 'asc');
    }
    setParams(next);
  };
  return { params, filters, draft, setDraft, search, setPage, sorting, setSorting };
}

/**
 * Opens an entry of the list shown (a study, a held object) keeping the list's address (filters, sort, page) in the
 * new history entry, so that the entry's page leads back to the list as it was left, after a reload too (useListReturn).
 */
export function useOpenFromList(): (to: string) => void {
  const navigate = useNavigate();
  const { search } = useLocation();
  return (to) => navigate(to, { state: { list: search } });
}

/** The address of the list `path` as it was left when this entry was opened from it, else its first page. */
export function useListReturn(path: string): string {
  const { state } = useLocation() as { state?: { list?: unknown } | null };
  return `${path}${typeof state?.list === 'string' ? state.list : ''}`;
}
