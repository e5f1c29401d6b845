import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { api, ApiError, unwrap } from '../api/client';
import { retryUnreachable } from '../connection';
import { DayChart } from '../components/Chart';
import { ErrorState, Loading } from '../components/States';

const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);

/** KPIs as charts: ingest volume, header quality, quarantine size and age, denied and break-glass accesses. */
export function Dashboard() {
  const [from, setFrom] = useState(daysAgo(29));
  const [to, setTo] = useState(today());
  return (
    <section aria-labelledby="dash-title">
      <h1 id="dash-title">Dashboard</h1>
      <form className="filters" aria-label="Period" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="k-from">From</label>
          <input id="k-from" type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="k-to">To</label>
          <input id="k-to" type="date" value={to} onChange={(e) => setTo(e.target.value)} />
        </div>
      </form>
      <Activity from={from} to={to} />
      <Quality from={from} to={to} />
    </section>
  );
}

function Activity({ from, to }: { from: string; to: string }) {
  const q = useQuery({
    queryKey: ['activity', from, to],
    queryFn: async () => unwrap(await api.GET('/api/kpis/activity', { params: { query: { from, to } } })),
  });
  const days = useMemo(() => q.data?.byDay.map((d) => d.day) ?? [], [q.data]);
  const ingest = useMemo(
    () => [
      { label: 'Images archived', values: q.data?.byDay.map((d) => d.ingested) ?? [], color: '#1f5fa8' },
    ],
    [q.data],
  );
  const access = useMemo(
    () => [
      { label: 'Denied accesses', values: q.data?.byDay.map((d) => d.denied) ?? [], color: '#b3261e' },
      { label: 'Break-glass', values: q.data?.byDay.map((d) => d.breakGlass) ?? [], color: '#8a5a00' },
    ],
    [q.data],
  );
  if (q.isPending) return <Loading what="activity" />;
  if (q.isError) return <ErrorState error={q.error} />;
  const t = q.data.totals;
  return (
    <>
      <div className="kpis" role="list" aria-label="Activity totals">
        <Kpi label="Images archived" value={t.ingested} />
        <Kpi label="Volume archived" value={`${(t.ingestedBytes / 1048576).toFixed(1)} MiB`} />
        <Kpi label="Denied accesses" value={t.denied} />
        <Kpi label="Break-glass accesses" value={t.breakGlass} />
      </div>
      <div className="charts">
        <DayChart title="Ingest volume per day" days={days} series={ingest} />
        <DayChart title="Denied and break-glass accesses per day" days={days} series={access} />
      </div>
    </>
  );
}

function Quality({ from, to }: { from: string; to: string }) {
  const q = useQuery({
    queryKey: ['quality', from, to],
    queryFn: async () => unwrap(await api.GET('/api/quality/kpis', { params: { query: { from, to } } })),
    retry: retryUnreachable,
  });
  const days = useMemo(() => q.data?.byDay.map((d) => d.day) ?? [], [q.data]);
  const outcomes = useMemo(
    () => [
      { label: 'Accepted', values: q.data?.byDay.map((d) => d.accepted) ?? [], color: '#1e7a3c' },
      {
        label: 'With warnings',
        values: q.data?.byDay.map((d) => d.acceptedWithWarnings) ?? [],
        color: '#8a5a00',
      },
      { label: 'Quarantined', values: q.data?.byDay.map((d) => d.quarantined) ?? [], color: '#b3261e' },
    ],
    [q.data],
  );
  // Left out, not faked, while the archive computes no quality KPIs (or this role may not see them).
  if (
    q.isError &&
    q.error instanceof ApiError &&
    (q.error.code === 'http.not-found' || q.error.status === 403)
  )
    return null;
  if (q.isPending) return <Loading what="data-quality figures" />;
  if (q.isError) return <ErrorState error={q.error} />;
  const k = q.data;
  return (
    <>
      <h2>Data quality</h2>
      <div className="kpis" role="list" aria-label="Data-quality figures">
        <Kpi
          label="Header quality"
          value={k.headerCorrectPercent === null ? '—' : `${k.headerCorrectPercent.toFixed(1)} %`}
        />
        <Kpi label="Quarantine size" value={k.quarantine.open} />
        <Kpi
          label="Oldest in quarantine"
          value={k.quarantine.oldestAgeHours === null ? '—' : `${k.quarantine.oldestAgeHours.toFixed(0)} h`}
        />
        <Kpi
          label="Median quarantine age"
          value={k.quarantine.medianAgeHours === null ? '—' : `${k.quarantine.medianAgeHours.toFixed(0)} h`}
        />
      </div>
      <div className="charts">
        <DayChart title="Ingest outcomes per day" days={days} series={outcomes} />
      </div>
    </>
  );
}

function Kpi({ label, value }: { label: string; value: string | number }) {
  return (
    <div className="kpi" role="listitem">
      <span className="kpi-value">{value}</span>
      <span className="kpi-label">{label}</span>
    </div>
  );
}
