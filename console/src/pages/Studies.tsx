import { keepPreviousData, useQuery } from '@tanstack/react-query';
import type { ColumnDef } from '@tanstack/react-table';
import { useState, type FormEvent } from 'react';
import { api, unwrap, type Schemas } from '../api/client';
import type { paths } from '../api/schema';
import { DataTable } from '../components/DataTable';
import { Empty, ErrorState, Loading, PastTheEnd } from '../components/States';
import { useAuth } from '../auth';
import { useListParams, useOpenFromList } from '../list-params';
import { BREAK_GLASS_ROLES } from '../roles';

type Study = Schemas['BrowsedStudy'];
type Sort = NonNullable<NonNullable<paths['/api/studies']['get']['parameters']['query']>['sort']>;
const FIELDS = [
  ['PatientName', 'Patient name', 'Doe^J*'],
  ['PatientID', 'Patient ID', 'PID-1'],
  ['StudyDate', 'Study date', '20240101-20241231'],
  ['ModalitiesInStudy', 'Modality', 'CT'],
  ['AccessionNumber', 'Accession', 'ACC*'],
] as const;
const PAGE = 25;

export const dicomDate = (d: string) =>
  /^\d{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d;
export const personName = (pn: string) => pn.replace(/\^+$/, '').replace(/\^/g, ', ');

// The column ids are the API's sort keys (GET /api/studies?sort=StudyDate&dir=desc), in the address too.
const columns: ColumnDef<Study, unknown>[] = [
  { id: 'PatientName', header: 'Patient', accessorFn: (s) => personName(s.patientName) },
  { id: 'PatientID', header: 'Patient ID', accessorKey: 'patientId' },
  { id: 'StudyDate', header: 'Date', accessorFn: (s) => dicomDate(s.studyDate) },
  { id: 'StudyDescription', header: 'Description', accessorKey: 'studyDescription' },
  { id: 'ModalitiesInStudy', header: 'Modalities', accessorFn: (s) => s.modalities.join(', ') },
  { id: 'AccessionNumber', header: 'Accession', accessorKey: 'accessionNumber' },
  { id: 'Department', header: 'Department', accessorFn: (s) => s.department ?? '—' },
  {
    id: 'Classification',
    header: 'Classification',
    accessorKey: 'classification',
    cell: (c) => <span className={`badge ${String(c.getValue())}`}>{String(c.getValue())}</span>,
  },
  { id: 'NumberOfStudyRelatedInstances', header: 'Images', accessorKey: 'numInstances' },
];

/** The study browser: a QIDO-like search over what the signed-in account may see (the server narrows it). */
export function Studies() {
  const { params, filters, draft, setDraft, search, setPage, sorting, setSorting } = useListParams(
    FIELDS.map(([k]) => k),
    ['offset'],
  );
  const open = useOpenFromList();
  const { session } = useAuth();
  const offset = Number(params.get('offset') ?? 0);
  const [openUid, setOpenUid] = useState('');

  const query = useQuery({
    queryKey: ['studies', filters, sorting, offset],
    // The answer carries the sort it was asked in: while the next one loads, the table shows this one's rows and
    // says their order (keepPreviousData), not the order just asked for.
    queryFn: async () => ({
      sorting,
      ...unwrap(
        await api.GET('/api/studies', {
          params: {
            query: {
              ...filters,
              ...(sorting[0] ? { sort: sorting[0].id as Sort, dir: sorting[0].desc ? 'desc' : 'asc' } : {}),
              limit: PAGE,
              offset,
            },
          },
        }),
      ),
    }),
    placeholderData: keepPreviousData,
  });

  const onSearch = (e: FormEvent) => {
    e.preventDefault();
    search();
  };
  const page = (o: number) => setPage(o ? { offset: String(o) } : {});

  return (
    <section aria-labelledby="studies-title">
      <h1 id="studies-title">Studies</h1>
      <form className="filters" onSubmit={onSearch} role="search" aria-label="Search studies">
        {FIELDS.map(([k, label, example]) => (
          <div key={k} className="field">
            <label htmlFor={`f-${k}`}>{label}</label>
            <input
              id={`f-${k}`}
              value={draft[k] ?? ''}
              placeholder={example}
              onChange={(e) => setDraft({ ...draft, [k]: e.target.value })}
            />
          </div>
        ))}
        <button type="submit">Search</button>
      </form>
      {query.isPending ? (
        <Loading what="studies" />
      ) : query.isError ? (
        <ErrorState error={query.error} />
      ) : query.data.studies.length === 0 ? (
        offset > 0 ? (
          // A page the search no longer reaches (an old address or bookmark, studies gone since). Until 7 Dec 2026
          // it said that no study matches the search, with no way back to the first page but editing the address.
          <PastTheEnd what="studies" first={() => page(0)} />
        ) : (
          <Empty>No study you may see matches this search.</Empty>
        )
      ) : (
        <>
          <DataTable
            data={query.data.studies}
            columns={columns}
            caption="Studies you may see"
            sort={{
              sorting,
              onSortingChange: setSorting,
              onServer: true,
              shown: query.data.sorting,
              busy: query.isPlaceholderData,
            }}
            onRowOpen={(s) => open(`/studies/${s.studyUid}`)}
            rowLabel={(s) => `Open study ${s.accessionNumber || s.studyUid}`}
          />
          <nav className="pager" aria-label="Pages">
            <button type="button" disabled={offset === 0} onClick={() => page(Math.max(0, offset - PAGE))}>
              Previous
            </button>
            <span>
              {offset + 1}–{offset + query.data.studies.length}
            </span>
            <button type="button" disabled={!query.data.more} onClick={() => page(offset + PAGE)}>
              Next
            </button>
          </nav>
        </>
      )}
      {session && BREAK_GLASS_ROLES.includes(session.role) ? (
        <form
          className="open-uid"
          onSubmit={(e) => {
            e.preventDefault();
            if (openUid.trim()) open(`/studies/${openUid.trim()}`);
          }}
        >
          <label htmlFor="open-uid">Study not listed? Open it by Study Instance UID</label>
          <input id="open-uid" value={openUid} onChange={(e) => setOpenUid(e.target.value)} />
          <button type="submit">Open</button>
        </form>
      ) : null}
    </section>
  );
}
