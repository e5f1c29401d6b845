/**
 * An instant as the console shows it: `2026-12-07 06:33:43 UTC`. The ledger, its CSV export, the audit filters'
 * days (`since`, `until`) and the activity figures' days are all UTC, so the times shown are too, and say so.
 * Until 7 Dec 2026 they were shown in the browser's time zone without naming it (`12/8/2026, 12:32:51 AM` in
 * Auckland for a record of 7 December UTC), so the day shown disagreed with the day the filters matched it by.
 */
export function formatInstant(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const s = d.toISOString();
  return `${s.slice(0, 10)} ${s.slice(11, 19)} UTC`;
}

/** The UTC day of an instant, `2026-12-07`. */
export function formatDay(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(0, 10);
}
