import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { api, ApiError, unwrap } from '../api/client';
import { retryUnreachable } from '../connection';
import { useAuth } from '../auth';
import { Empty, ErrorState, Loading } from '../components/States';
import { BREAK_GLASS_ROLES } from '../roles';
import { useListReturn } from '../list-params';
import { formatInstant } from '../time';
import { dicomDate, personName } from './Studies';

/** One study: governance state, series, and its own access history, as far as the account may see them. */
export function Study() {
  const { uid = '' } = useParams();
  const { session } = useAuth();
  const [breakGlass, setBreakGlass] = useState(false);
  // The study list as it was left (filters, sort, page); until 8 Dec 2026 its first page, unfiltered.
  const studies = useListReturn('/studies');
  const study = useQuery({
    queryKey: ['study', uid],
    queryFn: async () => unwrap(await api.GET('/api/studies/{uid}', { params: { path: { uid } } })),
    retry: retryUnreachable,
  });
  const canBreakGlass = !!session && BREAK_GLASS_ROLES.includes(session.role);

  if (study.isPending) return <Loading what="the study" />;
  if (study.isError)
    return (
      <section aria-labelledby="study-title">
        <h1 id="study-title">Study</h1>
        <p className="uid">{uid}</p>
        <ErrorState error={study.error} />
        {study.error instanceof ApiError && study.error.status === 403 && canBreakGlass ? (
          <>
            <p>
              In an emergency you may open this study for a limited time by giving a reason. The access is
              recorded and reported to the privacy officer.
            </p>
            <button type="button" className="danger" onClick={() => setBreakGlass(true)}>
              Break glass…
            </button>
          </>
        ) : null}
        {breakGlass ? <BreakGlassDialog studyUid={uid} onClose={() => setBreakGlass(false)} /> : null}
        <p>
          <Link to={studies}>Back to studies</Link>
        </p>
      </section>
    );

  const { study: s, series, accessHistory } = study.data;
  return (
    <section aria-labelledby="study-title">
      <h1 id="study-title">{s.studyDescription || 'Study'}</h1>
      <p className="uid">{s.studyUid}</p>
      <div className="cards">
        <section className="card" aria-labelledby="governance-title">
          <h2 id="governance-title">Governance</h2>
          <dl aria-label="Governance state">
            <dt>Owner</dt>
            <dd>{s.owner ?? 'not assigned'}</dd>
            <dt>Department</dt>
            <dd>{s.department ?? 'none'}</dd>
            <dt>Classification</dt>
            <dd>
              <span className={`badge ${s.classification}`}>{s.classification}</span>
            </dd>
            <dt>Retention until</dt>
            <dd>{s.retentionUntil ?? 'no rule applied yet'}</dd>
            <dt>Status</dt>
            <dd>{s.status}</dd>
          </dl>
        </section>
        <section className="card" aria-labelledby="study-facts-title">
          <h2 id="study-facts-title">Study</h2>
          <dl aria-label="Study">
            <dt>Patient</dt>
            <dd>
              {s.patientName !== undefined ? `${personName(s.patientName)} · ` : ''}
              {s.patientId}
            </dd>
            <dt>Date</dt>
            <dd>{dicomDate(s.studyDate)}</dd>
            {s.accessionNumber !== undefined ? (
              <>
                <dt>Accession</dt>
                <dd>{s.accessionNumber}</dd>
              </>
            ) : null}
            <dt>Modalities</dt>
            <dd>{s.modalities.join(', ')}</dd>
            <dt>Size</dt>
            <dd>
              {s.numSeries} series, {s.numInstances} images, {(s.totalBytes / 1024).toFixed(0)} KiB
            </dd>
          </dl>
        </section>
      </div>
      <h2>Series</h2>
      {series === null ? (
        <Empty>Your role may not read this study's series.</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Series of this study</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Modality</th>
                <th scope="col">Description</th>
                <th scope="col">Body part</th>
                <th scope="col">Images</th>
              </tr>
            </thead>
            <tbody>
              {series.map((se) => (
                <tr key={se.seriesUid}>
                  <td>{se.seriesNumber ?? ''}</td>
                  <td>{se.modality}</td>
                  <td>{se.seriesDescription}</td>
                  <td>{se.bodyPart}</td>
                  <td>{se.numInstances}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Access history</h2>
      {accessHistory === null ? (
        <Empty>The access history is shown to the privacy officer and the study's data owner.</Empty>
      ) : accessHistory.records.length === 0 ? (
        <Empty>No access recorded.</Empty>
      ) : (
        <div className="table-wrap">
          <table aria-label="Access history">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Role</th>
                <th scope="col">Action</th>
                <th scope="col">Outcome</th>
                <th scope="col">Policy</th>
              </tr>
            </thead>
            <tbody>
              {accessHistory.records.map((r) => (
                <tr key={r.seq} className={r.breakGlassReason ? 'break-glass' : undefined}>
                  <td>{formatInstant(r.ts)}</td>
                  <td>{r.actor}</td>
                  <td>{r.role}</td>
                  <td>
                    {r.action}
                    {r.breakGlassReason ? <span className="badge restricted"> break-glass</span> : null}
                  </td>
                  <td>
                    <span className={`badge ${r.outcome}`}>{r.outcome}</span>
                  </td>
                  <td>{r.policy}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {accessHistory.truncated ? (
            <p className="muted">Newest 200 shown; the audit explorer has all.</p>
          ) : null}
        </div>
      )}
      <p>
        <Link to={studies}>Back to studies</Link>
      </p>
    </section>
  );
}

/** Asks for the reason (at least 10 characters) and opens the study for a limited time. */
export function BreakGlassDialog({ studyUid, onClose }: { studyUid: string; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const qc = useQueryClient();
  const [reason, setReason] = useState('');
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const open = useMutation({
    mutationFn: async () => unwrap(await api.POST('/api/break-glass', { body: { studyUid, reason } })),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: ['study', studyUid] });
      onClose();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    open.mutate();
  };
  // A refused reason (missing, too short, too long: the server names the field, problem+json `parameter`) is tied
  // to the Reason field, so that a screen reader reads it there and the field is marked; until 7 Dec 2026 it stood
  // apart.
  const reasonRefused = open.error instanceof ApiError && open.error.parameter === 'reason';
  return (
    <dialog ref={ref} aria-labelledby="bg-title" onClose={onClose}>
      <form onSubmit={submit}>
        <h2 id="bg-title">Break glass</h2>
        <p>
          This opens a study outside your normal scope. Your reason and every access are recorded in the audit
          ledger and reported to the privacy officer.
        </p>
        <label htmlFor="bg-reason">Reason (at least 10 characters)</label>
        <textarea
          id="bg-reason"
          value={reason}
          minLength={10}
          required
          rows={3}
          onChange={(e) => setReason(e.target.value)}
          {...(reasonRefused ? { 'aria-invalid': true, 'aria-describedby': 'bg-error' } : {})}
        />
        {open.isError ? <ErrorState error={open.error} id="bg-error" /> : null}
        <div className="actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={reason.trim().length < 10 || open.isPending}>
            Open the study
          </button>
        </div>
      </form>
    </dialog>
  );
}
