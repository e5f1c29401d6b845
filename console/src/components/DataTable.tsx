import {
  flexRender,
  getCoreRowModel,
  getSortedRowModel,
  useReactTable,
  type ColumnDef,
  type OnChangeFn,
  type SortingState,
} from '@tanstack/react-table';

// An unsortable table gets one sorting array for every render, and a handler of ours: with a new empty array and
// TanStack's own state updater each render, the audit screen's inputs could not be filled in Chromium (Playwright's
// fill waited for ever; the mechanism inside TanStack Table was not pinned down).
const UNSORTED: SortingState = [];

/**
 * A keyboard-usable table (TanStack Table, headless), sortable by Enter/Space on a column header when given `sort`.
 * The sort is the caller's (kept in the address, list-params.ts). A list the server pages is sorted by the server
 * (`sort.onServer`): the table then shows the rows in the order they came. Sorting the rows of one page in the
 * browser, as until 6 Dec 2026, put page 2 out of page 1's order.
 *
 * While the server's answer to a new sort (or search, or page) is loading, the rows shown are still the previous
 * answer's: `sort.busy` marks the table `aria-busy`, and the headers' `aria-sort` (and arrows) say the order of the
 * rows shown (`sort.shown`), not the one asked for. Until 7 Dec 2026 a header said "ascending" as soon as it was
 * clicked, over rows in the old order.
 */
export function DataTable<T>({
  data,
  columns,
  caption,
  sort,
  onRowOpen,
  rowLabel,
}: {
  data: T[];
  columns: ColumnDef<T, unknown>[];
  caption: string;
  sort?: {
    sorting: SortingState;
    onSortingChange: OnChangeFn<SortingState>;
    onServer: boolean;
    /** The order of the rows shown, when it may differ from `sorting` (a server-sorted answer still loading). */
    shown?: SortingState;
    /** A new answer is loading: the rows shown are the previous one's. */
    busy?: boolean;
  };
  onRowOpen?: (row: T) => void;
  rowLabel?: (row: T) => string;
}) {
  const table = useReactTable({
    data,
    columns,
    state: { sorting: sort?.sorting ?? UNSORTED },
    enableSorting: !!sort,
    manualSorting: sort?.onServer ?? false,
    onSortingChange: sort?.onSortingChange ?? (() => undefined),
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
  });
  // What the headers say is the order of the rows on screen; the table's state (what a click toggles) is the one
  // asked for.
  const shown = sort?.shown ?? sort?.sorting ?? UNSORTED;
  const shownOrder = (id: string) => {
    const s = shown.find((x) => x.id === id);
    return s ? (s.desc ? 'desc' : 'asc') : false;
  };
  return (
    <div className="table-wrap">
      <table {...(sort?.busy ? { 'aria-busy': true } : {})}>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          {table.getHeaderGroups().map((hg) => (
            <tr key={hg.id}>
              {hg.headers.map((h) => {
                const sorted = h.column.getCanSort() ? shownOrder(h.column.id) : false;
                return (
                  <th
                    key={h.id}
                    scope="col"
                    aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'}
                  >
                    {h.column.getCanSort() ? (
                      <button type="button" className="sort" onClick={h.column.getToggleSortingHandler()}>
                        {flexRender(h.column.columnDef.header, h.getContext())}
                        <span aria-hidden="true">
                          {sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}
                        </span>
                      </button>
                    ) : (
                      flexRender(h.column.columnDef.header, h.getContext())
                    )}
                  </th>
                );
              })}
            </tr>
          ))}
        </thead>
        <tbody>
          {table.getRowModel().rows.map((row) => (
            <tr
              key={row.id}
              {...(onRowOpen
                ? {
                    tabIndex: 0,
                    className: 'clickable',
                    'aria-label': rowLabel?.(row.original),
                    onClick: () => onRowOpen(row.original),
                    onKeyDown: (e) => {
                      if (e.key === 'Enter') onRowOpen(row.original);
                    },
                  }
                : {})}
            >
              {row.getVisibleCells().map((cell) => (
                <td key={cell.id}>{flexRender(cell.column.columnDef.cell, cell.getContext())}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
