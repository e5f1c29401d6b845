import { describe, expect, it } from 'vitest';
import { arrivalOutcome, computeQualityKpis, daysBetween, median } from './quality-kpis.js';

describe('quality KPIs', () => {
  it('classifies ingest records; duplicates, releases and non-header failures are not arrivals', () => {
    const ts = '2026-11-20T10:00:00.000Z';
    expect(arrivalOutcome({ ts, action: 'store', outcome: 'success' })).toBe('accepted');
    expect(
      arrivalOutcome({
        ts,
        action: 'store',
        outcome: 'success',
        detail: { validation: ['x Type 2 missing'] },
      }),
    ).toBe('acceptedWithWarnings');
    expect(arrivalOutcome({ ts, action: 'quarantine', outcome: 'success' })).toBe('quarantined');
    expect(
      arrivalOutcome({
        ts,
        action: 'store',
        outcome: 'failure',
        detail: { code: 'ingest.validation-failed' },
      }),
    ).toBe('rejected');
    expect(
      arrivalOutcome({ ts, action: 'store', outcome: 'failure', detail: { code: 'blob.write-failed' } }),
    ).toBeUndefined();
    expect(
      arrivalOutcome({ ts, action: 'store', outcome: 'success', objects: { duplicate: true } }),
    ).toBeUndefined();
    expect(
      arrivalOutcome({ ts, action: 'store', outcome: 'success', detail: { releasedFrom: 'q1' } }),
    ).toBeUndefined();
  });

  it('medians and day lists', () => {
    expect(median([])).toBeNull();
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(daysBetween('2026-02-27', '2026-03-01')).toEqual(['2026-02-27', '2026-02-28', '2026-03-01']);
  });

  it('counts per day inside the period only and ages the open queue from the given clock', () => {
    const k = computeQualityKpis({
      from: '2026-11-20',
      to: '2026-11-21',
      now: new Date('2026-11-21T12:00:00Z'),
      ledger: [
        { ts: '2026-11-19T23:59:59.999Z', action: 'store', outcome: 'success' },
        { ts: '2026-11-20T00:00:00.000Z', action: 'store', outcome: 'success' },
        { ts: '2026-11-21T08:00:00.000Z', action: 'quarantine', outcome: 'success' },
        { ts: '2026-11-21T09:00:00.000Z', action: 'hl7-patient-merge', outcome: 'success' },
        { ts: '2026-11-21T09:30:00.000Z', action: 'hl7-patient-merge', outcome: 'failure' },
      ],
      openQuarantineCreatedAt: [
        '2026-11-21T08:00:00.000Z',
        '2026-11-20T12:00:00.000Z',
        '2026-11-21T11:00:00Z',
      ],
    });
    expect(k.objects).toEqual({
      total: 2,
      accepted: 1,
      acceptedWithWarnings: 0,
      quarantined: 1,
      rejected: 0,
    });
    expect(k.headerCorrectPercent).toBe(50);
    expect(k.quarantine).toEqual({ open: 3, oldestAgeHours: 24, medianAgeHours: 4 });
    expect(k.reconciliations.merges).toBe(1);
    expect(k.byDay.map((d) => [d.day, d.accepted, d.quarantined])).toEqual([
      ['2026-11-20', 1, 0],
      ['2026-11-21', 0, 1],
    ]);
  });
});
