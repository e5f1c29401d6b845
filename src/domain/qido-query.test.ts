import { describe, expect, it } from 'vitest';
import { parseQidoQuery, wildcardToLike } from './qido-query.js';

const q = (s: string, level: 'study' | 'series' | 'instance' = 'study') =>
  parseQidoQuery(new URLSearchParams(s), level);

describe('parseQidoQuery', () => {
  it('reads keywords and tags alike', () => {
    expect(q('PatientID=X').matches).toEqual([
      { key: 'PatientID', type: 'equals', value: 'X', caseInsensitive: false },
    ]);
    expect(q('00100020=X').matches).toEqual([
      { key: 'PatientID', type: 'equals', value: 'X', caseInsensitive: false },
    ]);
  });
  it('matches PatientName case-insensitively, with wildcards', () => {
    expect(q('PatientName=smi*').matches).toEqual([
      { key: 'PatientName', type: 'wildcard', pattern: 'smi*', caseInsensitive: true },
    ]);
  });
  it('refuses a person name of more than three component groups (PS3.5 §6.2.1.2)', () => {
    expect(() => parseQidoQuery(new URLSearchParams({ PatientName: 'a=b=c=d' }), 'study')).toThrow(
      /more than three component groups/,
    );
    expect(parseQidoQuery(new URLSearchParams({ PatientName: 'a=b=c' }), 'study').matches).toHaveLength(1);
  });

  it('parses date ranges of all three shapes and rejects malformed dates', () => {
    expect(q('StudyDate=20230101-20230131').matches[0]).toEqual({
      key: 'StudyDate',
      type: 'range',
      from: '20230101',
      to: '20230131',
    });
    expect(q('StudyDate=20230101-').matches[0]).toEqual({
      key: 'StudyDate',
      type: 'range',
      from: '20230101',
    });
    expect(q('StudyDate=-20230131').matches[0]).toEqual({ key: 'StudyDate', type: 'range', to: '20230131' });
    expect(() => q('StudyDate=2023-01-01')).toThrow(/StudyDate/);
    expect(() => q('StudyDate=-')).toThrow(/StudyDate/);
    // Digits are not enough: a date that does not exist, a time past 23:59, are refused naming why.
    expect(() => q('StudyDate=20240230')).toThrow(
      "StudyDate '20240230' is not a valid date: day 30 does not exist in month 2 of 2024",
    );
    expect(() => q('StudyDate=99999999-')).toThrow(/StudyDate range '99999999-' .*month 99 is not 01\.\.12/);
    expect(() => q('StudyTime=250000')).toThrow(/StudyTime '250000' is not a valid time/);
    expect(q('StudyDate=20240229').matches[0]).toMatchObject({ type: 'equals', value: '20240229' });
    expect(q('StudyTime=235960.5').matches[0]).toMatchObject({ type: 'equals', value: '235960.5' });
  });
  it('refuses a range that ends before it starts, comparing times as times (PS3.4 C.2.2.2.5)', () => {
    expect(() => q('StudyTime=230000-010000')).toThrow(
      /ends before it starts: a time range does not cross midnight/,
    );
    expect(() => q('StudyDate=20230131-20230101')).toThrow(
      /StudyDate range '20230131-20230101' ends before it starts/,
    );
    expect(() => q('StudyTime=101500.7-101500.5')).toThrow(/ends before it starts/);
    // The same time at two precisions is a range of that minute, and a bound's fraction counts as time.
    expect(q('StudyTime=1015-101500').matches[0]).toMatchObject({
      type: 'range',
      from: '1015',
      to: '101500',
    });
    expect(q('StudyTime=101500.5-1015').matches[0]).toMatchObject({ type: 'range' });
    expect(q('StudyDate=20230101-20230101').matches[0]).toMatchObject({ type: 'range' });
  });
  it('reads every component of an attribute path: keywords or tags, sequences but for the last', () => {
    const path = q('RequestAttributesSequence.00401001=RP1&includefield=00400275.RequestedProcedureID');
    expect(path.ignored).toEqual(['RequestAttributesSequence.00401001']);
    expect(path.includeFields).toEqual(new Set(['00400275']));
    expect(() => q('RequestAttributesSequence.Nope=1')).toThrow(/'Nope' is not a DICOM keyword or tag/);
    expect(() => q('PatientName.PatientID=1')).toThrow(/'PatientName' is not a sequence \(its VR is PN\)/);
    expect(() => q('includefield=00100010.00100020')).toThrow(
      /includefield '00100010.00100020': '00100010' is not a sequence/,
    );
    // A private tag's VR is not in the dictionary: it may be a sequence.
    expect(q('00091010.00100020=x').ignored).toEqual(['00091010.00100020']);
  });
  it('reads UID lists separated by comma or backslash and rejects invalid UIDs', () => {
    expect(q('StudyInstanceUID=1.2.3,1.2.4').matches[0]).toEqual({
      key: 'StudyInstanceUID',
      type: 'list',
      values: ['1.2.3', '1.2.4'],
    });
    expect(q('StudyInstanceUID=1.2.3\\1.2.4').matches[0]).toEqual({
      key: 'StudyInstanceUID',
      type: 'list',
      values: ['1.2.3', '1.2.4'],
    });
    expect(() => q('StudyInstanceUID=1.02.3')).toThrow(/not a valid UID/);
  });
  it('treats an empty value as universal matching: returned, not filtered', () => {
    const r = q('PatientBirthDate=');
    expect(r.matches).toEqual([]);
    expect(r.includeFields).toEqual(new Set(['00100030']));
  });
  it('collects includefield, limit and offset, and caps the limit', () => {
    const r = q('includefield=00081030,PatientAge&limit=5&offset=10');
    expect(r.includeFields).toEqual(new Set(['00081030', '00101010']));
    expect(r.limit).toBe(5);
    expect(r.offset).toBe(10);
    expect(q('includefield=all').includeFields).toBe('all');
    expect(q('limit=999999').limit).toBe(10000);
    expect(() => q('limit=-1')).toThrow(/limit/);
    expect(() => q('limit=0')).toThrow("limit must be at least 1, got '0'");
    // Numbers past what a 64-bit OFFSET or an exact double holds: a 400 naming the bound, not a database error.
    expect(q('limit=99999999999999999999').limit).toBe(10000);
    expect(q('offset=9007199254740991').offset).toBe(9007199254740991);
    for (const big of ['9007199254740992', '9223372036854775807', '99999999999999999999'])
      expect(() => q(`offset=${big}`)).toThrow(`offset must be at most 9007199254740991, got '${big}'`);
  });
  it('matches IS attributes as 32-bit integers and refuses a number outside that range', () => {
    expect(q('SeriesNumber=-2147483648&Modality=CT', 'series').matches).toContainEqual({
      key: 'SeriesNumber',
      type: 'int',
      value: -2147483648,
    });
    expect(q('InstanceNumber=2147483647', 'instance').matches).toEqual([
      { key: 'InstanceNumber', type: 'int', value: 2147483647 },
    ]);
    for (const big of ['2147483648', '-2147483649', '99999999999999999999'])
      expect(() => q(`SeriesNumber=${big}`, 'series')).toThrow(
        `SeriesNumber '${big}' is outside the range of an IS value (-2147483648 to 2147483647)`,
      );
  });
  it('refuses instance attributes in a study query and unknown keys', () => {
    expect(() => q('SOPInstanceUID=1.2')).toThrow(/study-level/);
    expect(() => q('NoSuchKeyword=1')).toThrow(/not a DICOM keyword/);
  });
  it('refuses a matching key given twice, by keyword or tag, even empty, naming it', () => {
    expect(() => q('StudyInstanceUID=1.2&StudyInstanceUID=1.3')).toThrow(
      /StudyInstanceUID is given more than once; give several values as one comma-separated list/,
    );
    expect(() => q('PatientName=doe*&00100010=smith*')).toThrow(/PatientName is given more than once/);
    expect(() => q('PatientName=&PatientName=x')).toThrow(/PatientName is given more than once/);
    expect(q('StudyInstanceUID=1.2,1.3').matches).toEqual([
      { key: 'StudyInstanceUID', type: 'list', values: ['1.2', '1.3'] },
    ]);
  });
  it('accepts but reports keys it cannot match on', () => {
    const r = q('PatientAge=040Y');
    expect(r.matches).toEqual([]);
    expect(r.ignored).toEqual(['PatientAge']);
    // An empty value asks for no matching, which is what it gets.
    expect(q('PatientAge=&00091001=&RequestAttributesSequence.RequestedProcedureID=').ignored).toEqual([]);
  });
  it('takes the matching parameters of PS3.18 §8.3.4: false is the normal search, true is reported', () => {
    const r = q('fuzzymatching=true&emptyvaluematching=true&multiplevaluematching=true&PatientID=P1');
    expect(r.ignored).toEqual(['fuzzymatching', 'emptyvaluematching', 'multiplevaluematching']);
    expect(q('emptyvaluematching=false&multiplevaluematching=false').ignored).toEqual([]);
    expect(() => q('multiplevaluematching=1')).toThrow('multiplevaluematching must be true or false');
  });
  it('refuses limit, offset and the matching modes given twice, naming them (until 7 Dec 2026 the last counted)', () => {
    for (const [query, name] of [
      ['limit=1&limit=3', 'limit'],
      ['Offset=0&offset=2', 'offset'],
      ['fuzzymatching=true&fuzzymatching=false', 'fuzzymatching'],
      ['emptyvaluematching=false&emptyvaluematching=false', 'emptyvaluematching'],
      ['multiplevaluematching=true&MultipleValueMatching=true', 'multiplevaluematching'],
    ]) {
      expect(() => q(query!), query).toThrow(`${name} is given more than once; give it once`);
    }
    expect(q('limit=2&offset=1&includefield=PatientAge&includefield=00101010')).toMatchObject({
      limit: 2,
      offset: 1,
    });
  });
  it('accepts a private or unknown tag as a key: returned, reported as not matched', () => {
    const r = q('00091001=private&00101010=040Y');
    expect(r.matches).toEqual([]);
    expect(r.ignored).toEqual(['00091001', '00101010']);
    expect(r.includeFields).toEqual(new Set(['00091001', '00101010']));
    expect(() => q('0009100=private')).toThrow(/'0009100' is not a DICOM keyword, tag or QIDO parameter/);
    expect(() => q('NoSuchKeyword=x')).toThrow(/'NoSuchKeyword' is not a DICOM keyword/);
  });
  it('adds the URL scope as matches', () => {
    const r = parseQidoQuery(new URLSearchParams(''), 'instance', { studyUid: '1.2', seriesUid: '1.3' });
    expect(r.matches.map((m) => m.key)).toEqual(['StudyInstanceUID', 'SeriesInstanceUID']);
  });
});

describe('wildcardToLike', () => {
  it('maps * and ? and escapes LIKE metacharacters', () => {
    expect(wildcardToLike('A*B?C')).toBe('A%B_C');
    expect(wildcardToLike('50%_x\\')).toBe('50\\%\\_x\\\\');
  });
});
