import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { ColumnDef } from '@tanstack/react-table';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { api, ApiError, unwrap, type Schemas } from '../api/client';
import { retryUnreachable } from '../connection';
import { useAuth } from '../auth';
import { DataTable } from '../components/DataTable';
import { useListParams } from '../list-params';
import { Empty, ErrorState, Loading, PastTheEnd } from '../components/States';
import { AUDIT_READERS, BREAK_GLASS_REVIEWERS } from '../roles';
import { formatInstant } from '../time';

type AuditRecord = Schemas['AuditRecord'];
const FILTERS = [
  ['patient', 'Patient ID'],
  ['study', 'Study UID'],
  ['user', 'Account'],
  ['action', 'Action(s)'],
  ['since', 'Since (YYYY-MM-DD, UTC)'],
  ['until', 'Until (YYYY-MM-DD, UTC, not included)'],
] as const;

const recordColumns: ColumnDef<AuditRecord, unknown>[] = [
  { header: '#', accessorKey: 'seq' },
  { header: 'When', accessorFn: (r) => formatInstant(r.ts) },
  { header: 'Who', accessorFn: (r) => r.actor.name },
  { header: 'Role', accessorFn: (r) => r.actor.role },
  { header: 'Action', accessorKey: 'action' },
  {
    header: 'Outcome',
    accessorKey: 'outcome',
    cell: (c) => <span className={`badge ${String(c.getValue())}`}>{String(c.getValue())}</span>,
  },
  { header: 'Patient', accessorFn: (r) => r.patientId ?? '' },
  {
    header: 'Study',
    accessorFn: (r) => r.studyUid ?? '',
    cell: (c) =>
      c.getValue() ? (
        // The visible text starts the accessible name (WCAG 2.5.3), the full UID follows.
        <Link
          to={`/studies/${String(c.getValue())}`}
          aria-label={`…${String(c.getValue()).slice(-8)}: study ${String(c.getValue())}`}
        >
          {`…${String(c.getValue()).slice(-8)}`}
        </Link>
      ) : null,
  },
  { header: 'Policy', accessorKey: 'policy' },
  { header: 'Break-glass reason', accessorFn: (r) => r.breakGlassReason ?? '' },
];

/** The audit explorer: ledger search, accounting of disclosures, CSV export, break-glass review. */
export function Audit() {
  const { session } = useAuth();
  const role = session?.role ?? '';
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit</h1>
      {AUDIT_READERS.includes(role) ? (
        <>
          <LedgerSearch />
          <Disclosures />
        </>
      ) : null}
      {BREAK_GLASS_REVIEWERS.includes(role) ? <BreakGlassReview /> : null}
    </section>
  );
}

const FILTER_KEYS = [...FILTERS.map(([k]) => k), 'outcome'];
const AUDIT_PAGE = 50;

/**
 * Newest first, paged by the ledger's sequence numbers, which the address holds with the filters: `before` (older
 * than the record of that seq) or `after` (the page just newer than that record; the API answers it oldest
 * first). Its columns do not sort: a sort of one page's rows would not be the ledger's order.
 */
function LedgerSearch() {
  const { params, filters, draft, setDraft, search, setPage } = useListParams(FILTER_KEYS, [
    'before',
    'after',
  ]);
  const before = params.get('before');
  const after = params.get('after');
  const cursor = after ? { after: Number(after) } : before ? { before: Number(before) } : {};
  const records = useQuery({
    queryKey: ['audit', filters, cursor],
    queryFn: async () => {
      const r = unwrap(
        await api.GET('/api/audit/records', {
          params: { query: { ...filters, limit: AUDIT_PAGE, ...cursor } },
        }),
      );
      return { ...r, records: after ? [...r.records].reverse() : r.records };
    },
  });
  const onSearch = (e: FormEvent) => {
    e.preventDefault();
    search();
  };
  const exportUrl = `/api/audit/export?${new URLSearchParams({ ...filters, format: 'csv' })}`;
  const shown = records.data?.records ?? [];
  // Newer: none above the first page; from an `after` page, only when the API says a newer record lies beyond
  // (its `next`, offered only then: until 7 Dec 2026 also for a full page that reached the newest record, so
  // Newer led to an empty page).
  const hasNewer = after ? !!records.data?.next : !!before;
  const hasOlder = after ? shown.length > 0 : !!records.data?.next?.before;
  return (
    <>
      <h2>Ledger</h2>
      <form className="filters" onSubmit={onSearch} role="search" aria-label="Filter audit records">
        {FILTERS.map(([k, label]) => (
          <div className="field" key={k}>
            <label htmlFor={`a-${k}`}>{label}</label>
            <input
              id={`a-${k}`}
              value={draft[k] ?? ''}
              onChange={(e) => setDraft({ ...draft, [k]: e.target.value })}
            />
          </div>
        ))}
        <div className="field">
          <label htmlFor="a-outcome">Outcome</label>
          <select
            id="a-outcome"
            value={draft.outcome ?? ''}
            onChange={(e) => setDraft({ ...draft, outcome: e.target.value })}
          >
            <option value="">any</option>
            <option value="success">success</option>
            <option value="denied">denied</option>
            <option value="failure">failure</option>
          </select>
        </div>
        <button type="submit">Search</button>
        <a className="button" href={exportUrl} download="custos-audit.csv">
          Export CSV
        </a>
      </form>
      {records.isPending ? (
        <Loading what="audit records" />
      ) : records.isError ? (
        <ErrorState error={records.error} />
      ) : records.data.records.length === 0 ? (
        before || after ? (
          // A page beyond the ledger's ends (an old address or bookmark). Until 7 Dec 2026 it said that no record
          // matches the search, with no way back to the first page but editing the address.
          <PastTheEnd what="audit records" first={() => setPage({})} />
        ) : (
          <Empty>No audit record matches.</Empty>
        )
      ) : (
        <>
          <DataTable
            data={records.data.records}
            columns={recordColumns}
            caption="Audit records, newest first"
          />
          <nav className="pager" aria-label="Audit pages">
            <button
              type="button"
              disabled={!hasNewer}
              onClick={() => setPage({ after: String(records.data.records[0]!.seq) })}
            >
              Newer
            </button>
            <button
              type="button"
              disabled={!hasOlder}
              onClick={() => setPage({ before: String(records.data.records.at(-1)!.seq) })}
            >
              Older
            </button>
          </nav>
        </>
      )}
    </>
  );
}

function Disclosures() {
  const [patient, setPatient] = useState('');
  const [asked, setAsked] = useState('');
  const result = useQuery({
    queryKey: ['disclosures', asked],
    enabled: !!asked,
    queryFn: async () =>
      unwrap(await api.GET('/api/audit/disclosures', { params: { query: { patient: asked } } })),
  });
  return (
    <>
      <h2>Accounting of disclosures</h2>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setAsked(patient.trim());
        }}
      >
        <div className="field">
          <label htmlFor="d-patient">Patient ID</label>
          <input id="d-patient" value={patient} onChange={(e) => setPatient(e.target.value)} required />
        </div>
        <button type="submit">Account</button>
      </form>
      {!asked ? null : result.isPending ? (
        <Loading what="disclosures" />
      ) : result.isError ? (
        <ErrorState error={result.error} />
      ) : result.data.disclosures.length === 0 ? (
        <Empty>Nobody accessed this patient's studies.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-label={`Disclosures for patient ${asked}`}>
            <thead>
              <tr>
                <th scope="col">Who</th>
                <th scope="col">Role</th>
                <th scope="col">What</th>
                <th scope="col">Times</th>
                <th scope="col">First</th>
                <th scope="col">Last</th>
                <th scope="col">Break-glass</th>
              </tr>
            </thead>
            <tbody>
              {result.data.disclosures.map((d) => (
                <tr key={`${d.kind}:${d.actor}`}>
                  <td>{d.actor}</td>
                  <td>{d.role}</td>
                  <td>{d.actions.join(', ')}</td>
                  <td>{d.count}</td>
                  <td>{formatInstant(d.first)}</td>
                  <td>{formatInstant(d.last)}</td>
                  <td>{d.breakGlass ? 'yes' : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function BreakGlassReview() {
  const qc = useQueryClient();
  const [reviewed, setReviewed] = useState<'false' | 'true'>('false');
  const [notes, setNotes] = useState<Record<string, string>>({});
  const items = useQuery({
    queryKey: ['break-glass', reviewed],
    queryFn: async () => unwrap(await api.GET('/api/break-glass', { params: { query: { reviewed } } })),
    retry: retryUnreachable,
  });
  const review = useMutation({
    mutationFn: async (id: string) =>
      unwrap(
        await api.POST('/api/break-glass/{id}/review', {
          params: { path: { id } },
          body: { note: notes[id] ?? '' },
        }),
      ),
    // Read again whatever the answer: a refusal often means the list is out of date (another reviewer marked the
    // access reviewed first). Until 8 Dec 2026 it was read again only after a success, and kept offering what was
    // refused.
    onSettled: () => qc.invalidateQueries({ queryKey: ['break-glass'] }),
  });
  // Once the list read again no longer offers the refused review, its refusal takes the keyboard focus, which was
  // on a button no longer there.
  const refusedGone =
    review.isError && !!items.data && !items.data.some((b) => b.id === review.variables && !b.reviewedBy);
  const refusedRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (refusedGone) refusedRef.current?.focus();
  }, [refusedGone]);
  // Left out, not faked, while the archive has no break-glass report.
  if (items.isError && items.error instanceof ApiError && items.error.code === 'http.not-found') return null;
  return (
    <>
      <h2>Break-glass review</h2>
      <div className="field inline">
        <label htmlFor="bg-filter">Show</label>
        <select
          id="bg-filter"
          value={reviewed}
          onChange={(e) => setReviewed(e.target.value as 'true' | 'false')}
        >
          <option value="false">awaiting review</option>
          <option value="true">reviewed</option>
        </select>
      </div>
      {items.isPending ? (
        <Loading what="break-glass accesses" />
      ) : items.isError ? (
        <ErrorState error={items.error} />
      ) : items.data.length === 0 ? (
        <Empty>No break-glass access {reviewed === 'false' ? 'awaits review' : 'was reviewed yet'}.</Empty>
      ) : (
        <ul className="cards-list">
          {items.data.map((b) => (
            <li key={b.id} className="card">
              <p>
                <strong>{b.username}</strong> ({b.role}) opened study <code>{b.studyUid}</code> of patient{' '}
                {b.patientId} on {formatInstant(b.openedAt)}, {b.accesses} accesses.
              </p>
              <p>
                Reason: <q>{b.reason}</q>
              </p>
              {b.reviewedBy ? (
                <p className="muted">
                  Reviewed by {b.reviewedBy}: {b.reviewNote}
                </p>
              ) : (
                <form
                  onSubmit={(e) => {
                    e.preventDefault();
                    review.mutate(b.id);
                  }}
                >
                  <label htmlFor={`note-${b.id}`}>Review note</label>
                  <input
                    id={`note-${b.id}`}
                    value={notes[b.id] ?? ''}
                    onChange={(e) => setNotes({ ...notes, [b.id]: e.target.value })}
                    required
                  />
                  <button type="submit" disabled={review.isPending}>
                    Mark reviewed
                  </button>
                </form>
              )}
            </li>
          ))}
        </ul>
      )}
      {review.isError ? (
        <div ref={refusedRef} tabIndex={-1}>
          <ErrorState error={review.error} />
        </div>
      ) : null}
    </>
  );
}
