import type { AuditRecord } from '../../src/domain/audit-record.js';

/** A deterministic record for export tests: a user reading one study. Tests override what they exercise. */
export function sampleRecord(over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    v: 1,
    seq: 42,
    ts: '2026-11-23T08:49:20.123Z',
    actor: { kind: 'user', id: '7', name: 'dr.house', role: 'radiologist', via: 'password' },
    action: 'view-pixels',
    outcome: 'success',
    policy: 'cedar:radiologist-read',
    patientId: 'PAT-001',
    studyUid: '1.2.826.0.1.3680043.8.498.1',
    objects: {
      series: ['1.2.826.0.1.3680043.8.498.1.1'],
      sopInstanceUids: ['1.2.826.0.1.3680043.8.498.1.1.1', '1.2.826.0.1.3680043.8.498.1.1.2'],
      count: 2,
    },
    source: '10.1.2.3',
    channel: 'dicomweb',
    node: 'custos-a.example.org',
    ...over,
  };
}
