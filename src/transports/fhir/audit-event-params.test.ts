import { describe, expect, it } from 'vitest';
import { dateRange, parseAuditEventSearch } from './audit-event-params.js';

const parse = (qs: string) => parseAuditEventSearch(new URLSearchParams(qs));
const failure = (qs: string) => {
  try {
    parse(qs);
  } catch (err) {
    return {
      status: (err as { httpStatus: number }).httpStatus,
      parameter: (err as { detail: { parameter: string } }).detail.parameter,
    };
  }
  throw new Error(`${qs} was accepted`);
};

describe('FHIR AuditEvent search parameters', () => {
  it('defaults to the newest 100', () => {
    expect(parse('')).toEqual({ limit: 100, order: 'desc' });
  });

  it('reads patient, agent and entity as bare values, identifiers (system|value) or references', () => {
    expect(parse('patient=PAT-1').patientId).toBe('PAT-1');
    expect(parse('patient=Patient/PAT-1').patientId).toBe('PAT-1');
    expect(parse('patient=urn:oid:1.2.3|PAT-1').patientId).toBe('PAT-1');
    expect(parse('agent=dr.house').actor).toBe('dr.house');
    expect(parse('agent=Practitioner/dr.house').actor).toBe('dr.house');
    expect(parse('entity=1.2.840.1').studyUid).toBe('1.2.840.1');
    expect(parse('entity=urn:oid:1.2.840.1').studyUid).toBe('1.2.840.1');
    expect(parse('entity=urn:dicom:uid|urn:oid:1.2.840.1').studyUid).toBe('1.2.840.1');
    expect(parse('entity=ImagingStudy/1.2.840.1').studyUid).toBe('1.2.840.1');
  });

  it('maps action codes to the Custos actions that carry them; repeats intersect, commas unite', () => {
    expect(parse('action=C').action).toEqual(['store']);
    expect(parse('action=D').action).toEqual(['delete']);
    expect(parse('action=R').action).toEqual(
      expect.arrayContaining(['view-metadata', 'view-pixels', 'export-clinical', 'read-audit']),
    );
    expect(parse('action=C,D').action!.sort()).toEqual(['delete', 'store']);
    expect(parse('action=C&action=D').action).toEqual(['-']);
  });

  it('turns date prefixes into a half-open UTC interval at the precision given', () => {
    expect(parse('date=2026-11-23')).toMatchObject({
      since: '2026-11-23T00:00:00.000Z',
      until: '2026-11-24T00:00:00.000Z',
    });
    expect(parse('date=ge2026-11&date=lt2026-12-01')).toMatchObject({
      since: '2026-11-01T00:00:00.000Z',
      until: '2026-12-01T00:00:00.000Z',
    });
    expect(parse('date=gt2026-11-23')).toMatchObject({ since: '2026-11-24T00:00:00.000Z' });
    expect(parse('date=le2026')).toMatchObject({ until: '2027-01-01T00:00:00.000Z' });
    expect(parse('date=ge2026-11-23T10:00:00%2B02:00')).toMatchObject({ since: '2026-11-23T08:00:00.000Z' });
    expect(parse('date=ge2026-11-23T10:00:00+02:00')).toMatchObject({ since: '2026-11-23T08:00:00.000Z' });
    expect(parse('date=eq2026-11-23T08:49:20.123Z')).toMatchObject({
      since: '2026-11-23T08:49:20.123Z',
      until: '2026-11-23T08:49:20.124Z',
    });
    // The narrower of two bounds wins.
    expect(parse('date=ge2026-01-01&date=ge2026-06-01&date=le2026-12&date=le2026-07')).toMatchObject({
      since: '2026-06-01T00:00:00.000Z',
      until: '2026-08-01T00:00:00.000Z',
    });
    expect(dateRange('2024-02-30')).toBeUndefined();
    expect(dateRange('2024-02-29')).toEqual({
      lo: '2024-02-29T00:00:00.000Z',
      hi: '2024-03-01T00:00:00.000Z',
    });
  });

  it('pages with _count and _cursor', () => {
    expect(parse('_count=5&_cursor=77')).toMatchObject({ limit: 5, beforeSeq: 77, order: 'desc' });
  });

  it('refuses bad values and unknown parameters with 400 naming the parameter', () => {
    expect(failure('date=2026-13-01')).toEqual({ status: 400, parameter: 'date' });
    expect(failure('date=sa2026-01-01')).toEqual({ status: 400, parameter: 'date' });
    expect(failure('date=2026-11-23T10:00')).toEqual({ status: 400, parameter: 'date' });
    expect(failure('action=X')).toEqual({ status: 400, parameter: 'action' });
    expect(failure('_count=0')).toEqual({ status: 400, parameter: '_count' });
    expect(failure('_count=1001')).toEqual({ status: 400, parameter: '_count' });
    expect(failure('_cursor=abc')).toEqual({ status: 400, parameter: '_cursor' });
    expect(failure('entity=not-a-uid')).toEqual({ status: 400, parameter: 'entity' });
    expect(failure('patient=a&patient=b')).toEqual({ status: 400, parameter: 'patient' });
    expect(failure('patient=a,b')).toEqual({ status: 400, parameter: 'patient' });
    expect(failure('outcome=0')).toEqual({ status: 400, parameter: 'outcome' });
    expect(failure('_format=xml')).toEqual({ status: 400, parameter: '_format' });
  });
});
