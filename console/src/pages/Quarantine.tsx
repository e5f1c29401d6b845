import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { ColumnDef } from '@tanstack/react-table';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { api, ApiError, unwrap, type Schemas } from '../api/client';
import type { paths } from '../api/schema';
import { formatInstant } from '../time';
import { DataTable } from '../components/DataTable';
import { Empty, ErrorState, Loading, PastTheEnd } from '../components/States';
import { useListParams, useListReturn, useOpenFromList } from '../list-params';

type Entry = Schemas['QuarantineSummary'];
type Sort = NonNullable<NonNullable<paths['/api/quarantine']['get']['parameters']['query']>['sort']>;
const STATUSES = ['quarantined', 'released', 'rejected'] as const;
const PAGE = 50;
// The column ids are the API's sort keys (GET /api/quarantine?sort=PatientID&dir=asc), in the address too.
const columns: ColumnDef<Entry, unknown>[] = [
  // Sorted by the server, by the instant; shown in UTC, as the ledger and the audit filters are (time.ts).
  {
    id: 'Received',
    header: 'Received',
    accessorKey: 'createdAt',
    cell: (c) => formatInstant(String(c.getValue())),
  },
  { id: 'PatientID', header: 'Patient ID', accessorKey: 'patientId' },
  { id: 'Reasons', header: 'Reasons', accessorFn: (e) => e.reasons.join('; '), enableSorting: false },
  { id: 'Channel', header: 'Channel', accessorKey: 'channel' },
  { id: 'Sender', header: 'Sender', accessorKey: 'sender' },
  // One status per listing (the status filter): nothing to sort.
  { id: 'Status', header: 'Status', accessorKey: 'status', enableSorting: false },
];

/**
 * The data steward's quarantine queue: objects held at ingest for header defects, paged and sorted by the server
 * (status, sort and page in the address). Until 7 Dec 2026 the screen loaded the first 200 entries and had no way
 * to the others.
 */
export function QuarantineQueue() {
  const { params, setPage, sorting, setSorting } = useListParams([], ['status', 'offset']);
  const status = STATUSES.find((s) => s === params.get('status')) ?? 'quarantined';
  const offset = Number(params.get('offset') ?? 0) || 0;
  const open = useOpenFromList();
  const list = useQuery({
    queryKey: ['quarantine', status, sorting, offset],
    // The answer carries the sort it was asked in: while the next one loads, the table shows this one's rows and
    // says their order (keepPreviousData), not the order just asked for.
    queryFn: async () => ({
      sorting,
      ...unwrap(
        await api.GET('/api/quarantine', {
          params: {
            query: {
              status,
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
  /** The same status on another page (a status other than the default stays in the address). */
  const page = (o: number) =>
    setPage({ ...(status === 'quarantined' ? {} : { status }), ...(o ? { offset: String(o) } : {}) });
  return (
    <section aria-labelledby="q-title">
      <h1 id="q-title">Quarantine</h1>
      <div className="field inline">
        <label htmlFor="q-status">Status</label>
        <select
          id="q-status"
          value={status}
          onChange={(e) => setPage(e.target.value === 'quarantined' ? {} : { status: e.target.value })}
        >
          <option value="quarantined">held</option>
          <option value="released">released</option>
          <option value="rejected">rejected</option>
        </select>
      </div>
      {list.isPending ? (
        <Loading what="the quarantine" />
      ) : list.isError ? (
        <ErrorState error={list.error} />
      ) : list.data.entries.length === 0 ? (
        offset > 0 ? (
          // A page the queue no longer reaches (entries released or rejected since, or an old address).
          <PastTheEnd what="entries" first={() => page(0)} />
        ) : (
          <Empty>Nothing {status === 'quarantined' ? 'is held' : `was ${status}`}.</Empty>
        )
      ) : (
        <>
          <p className="muted">{list.data.total} objects</p>
          <DataTable
            data={list.data.entries}
            columns={columns}
            caption="Quarantined objects"
            sort={{
              sorting,
              onSortingChange: setSorting,
              onServer: true,
              shown: list.data.sorting,
              busy: list.isPlaceholderData,
            }}
            onRowOpen={(e) => open(`/quarantine/${e.id}`)}
            rowLabel={(e) => `Inspect quarantined object ${e.id}`}
          />
          <nav className="pager" aria-label="Pages">
            <button type="button" disabled={offset === 0} onClick={() => page(Math.max(0, offset - PAGE))}>
              Previous
            </button>
            <span>
              {offset + 1}–{offset + list.data.entries.length} of {list.data.total}
            </span>
            <button type="button" disabled={!list.data.next} onClick={() => page(offset + PAGE)}>
              Next
            </button>
          </nav>
        </>
      )}
    </section>
  );
}

/** Inspect one held object: its defects, header, corrections; correct, release or reject it. */
export function QuarantineItem() {
  const { id = '' } = useParams();
  const qc = useQueryClient();
  const navigate = useNavigate();
  // The queue as it was left (status, sort, page: its address, kept in the history entry, so a reload keeps it):
  // a decision and "Back to the queue" return there. Until 8 Dec 2026 both led to the first page of the held
  // objects, unsorted, whatever the queue had shown.
  const queue = useListReturn('/quarantine');
  const [tag, setTag] = useState('');
  const [value, setValue] = useState('');
  const [reason, setReason] = useState('');
  const item = useQuery({
    queryKey: ['quarantine-item', id],
    queryFn: async () => unwrap(await api.GET('/api/quarantine/{id}', { params: { path: { id } } })),
  });
  const done = async () => {
    await qc.invalidateQueries({ queryKey: ['quarantine'] });
    await qc.invalidateQueries({ queryKey: ['quarantine-item', id] });
  };
  // The object and the queue are read again after every decision, refused or unanswered too: a refusal often means
  // the screen is out of date (another steward released, rejected or corrected it first). Until 8 Dec 2026 they were
  // read again only after a success, so the screen kept showing the object as held and offering what was refused.
  const correct = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.POST('/api/quarantine/{id}/corrections', {
          params: { path: { id } },
          // Several values (DICOM's backslash-separated VM > 1) go as an array.
          body: { [tag.trim()]: value.includes('\\') ? value.split('\\') : value },
        }),
      ),
    onSuccess: () => {
      setTag('');
      setValue('');
    },
    onSettled: done,
  });
  const release = useMutation({
    mutationFn: async () =>
      unwrap(await api.POST('/api/quarantine/{id}/release', { params: { path: { id } } })),
    onSuccess: async () => {
      await done();
      navigate(queue);
    },
    onError: done,
  });
  const reject = useMutation({
    mutationFn: async () =>
      unwrap(await api.POST('/api/quarantine/{id}/reject', { params: { path: { id } }, body: { reason } })),
    onSuccess: async () => {
      await done();
      navigate(queue);
    },
    onError: done,
  });
  // A refused correction names the attribute it refuses (correction.invalid: not a keyword, not correctable, not
  // text): the error is tied to the Attribute field, so a screen reader reads it there and the field is marked.
  const tagRefused = correct.error instanceof ApiError && correct.error.code === 'correction.invalid';
  // Likewise a refused reason for rejecting (blank) is tied to the Reason field (until 7 Dec 2026 it stood apart).
  const reasonRefused =
    reject.error instanceof ApiError && reject.error.code === 'quarantine.reason-required';
  // One decision at a time: while a correction, release or rejection is on its way, none of the three can be sent
  // (until 7 Dec 2026 each disabled only its own button, so a Reject could follow a pending Release).
  const deciding = correct.isPending || release.isPending || reject.isPending;
  // The last decision's refusal, shown in place of the decisions once the object read again is no longer held (they
  // would take their errors with them); it takes the keyboard focus, which was on a button no longer there.
  const lastRefused = [correct, release, reject]
    .filter((m) => m.isError)
    .sort((a, b) => b.submittedAt - a.submittedAt)[0]?.error;
  const decided = item.data !== undefined && item.data.status !== 'quarantined';
  const refusedRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (decided && lastRefused) refusedRef.current?.focus();
  }, [decided, lastRefused]);
  if (item.isPending) return <Loading what="the quarantined object" />;
  if (item.isError) return <ErrorState error={item.error} />;
  const q = item.data;
  const header = Object.entries(q.corrected as Record<string, { vr?: string; Value?: unknown[] }>)
    .filter(([, v]) => v.vr !== 'OB' && v.vr !== 'OW' && v.vr !== 'SQ')
    .slice(0, 80);
  const onCorrect = (e: FormEvent) => {
    e.preventDefault();
    if (!deciding) correct.mutate();
  };
  return (
    <section aria-labelledby="qi-title">
      <h1 id="qi-title">Quarantined object</h1>
      <p className="uid">{q.id}</p>
      <p>
        Patient {q.patientId} · status <span className="badge">{q.status}</span>
      </p>
      <h2>Defects</h2>
      <ul>
        {q.reasons.map((r) => (
          <li key={r}>{r}</li>
        ))}
      </ul>
      {q.status === 'quarantined' ? (
        <div className="cards">
          <form className="card" onSubmit={onCorrect} aria-labelledby="correct-title">
            <h2 id="correct-title">Correct an attribute</h2>
            <label htmlFor="c-tag">Attribute (keyword or (gggg,eeee))</label>
            <input
              id="c-tag"
              value={tag}
              onChange={(e) => setTag(e.target.value)}
              placeholder="(0020,0032)"
              required
              {...(tagRefused ? { 'aria-invalid': true, 'aria-describedby': 'c-error' } : {})}
            />
            <label htmlFor="c-value">New value (multiple values separated by \)</label>
            <input id="c-value" value={value} onChange={(e) => setValue(e.target.value)} required />
            <button type="submit" disabled={deciding}>
              Save correction
            </button>
            {correct.isError ? <ErrorState error={correct.error} id="c-error" /> : null}
          </form>
          <div className="card">
            <h2>Decide</h2>
            <button type="button" onClick={() => release.mutate()} disabled={deciding}>
              Release into the archive
            </button>
            {release.isError ? <ErrorState error={release.error} /> : null}
            <form
              onSubmit={(e) => {
                e.preventDefault();
                if (!deciding) reject.mutate();
              }}
            >
              <label htmlFor="r-reason">Reason for rejecting</label>
              <input
                id="r-reason"
                value={reason}
                onChange={(e) => setReason(e.target.value)}
                required
                {...(reasonRefused ? { 'aria-invalid': true, 'aria-describedby': 'r-error' } : {})}
              />
              <button type="submit" className="danger" disabled={deciding}>
                Reject for good
              </button>
            </form>
            {reject.isError ? <ErrorState error={reject.error} id="r-error" /> : null}
          </div>
        </div>
      ) : lastRefused ? (
        <div ref={refusedRef} tabIndex={-1}>
          <ErrorState error={lastRefused} />
        </div>
      ) : null}
      <h2>Corrections</h2>
      {Object.keys(q.corrections).length === 0 ? (
        <Empty>No correction yet.</Empty>
      ) : (
        <ul>
          {Object.entries(q.corrections).map(([t, v]) => (
            <li key={t}>
              <code>{t}</code> = {v.join('\\')}
            </li>
          ))}
        </ul>
      )}
      <details>
        <summary>Header (with corrections)</summary>
        <table aria-label="Header attributes">
          <tbody>
            {header.map(([t, v]) => (
              <tr key={t}>
                <th scope="row">
                  <code>{t}</code>
                </th>
                <td>{v.vr}</td>
                <td>{JSON.stringify(v.Value ?? '')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
      <p>
        <Link to={queue}>Back to the queue</Link>
      </p>
    </section>
  );
}
