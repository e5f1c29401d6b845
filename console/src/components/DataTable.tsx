import {
  flexRender,
  getCoreRowModel,
  getSortedRowModel,
  useReactTable,
  type ColumnDef,
  type OnChangeFn,
  type SortingState,
} from '@tanstack/react-table';

/**
 * A sortable, keyboard-usable table (TanStack Table, headless): sort by Enter/Space on a column header. The sort
 * is the caller's (kept in the address, list-params.ts), so that it survives a reload and can be shared.
 */
export function DataTable<T>({
  data,
  columns,
  caption,
  sorting,
  onSortingChange,
  onRowOpen,
  rowLabel,
}: {
  data: T[];
  columns: ColumnDef<T, unknown>[];
  caption: string;
  sorting: SortingState;
  onSortingChange: OnChangeFn<SortingState>;
  onRowOpen?: (row: T) => void;
  rowLabel?: (row: T) => string;
}) {
  const table = useReactTable({
    data,
    columns,
    state: { sorting },
    onSortingChange,
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
  });
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          {table.getHeaderGroups().map((hg) => (
            <tr key={hg.id}>
              {hg.headers.map((h) => {
                const sorted = h.column.getIsSorted();
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
