import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { nativeDicomXml } from './dicom-xml.js';

describe('nativeDicomXml (PS3.19 Native DICOM Model)', () => {
  it('writes values, names in their groups, sequences, bulk and inline binary, in tag order', () => {
    const xml = nativeDicomXml({
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' }] },
      '00080020': { vr: 'DA', Value: ['20240115'] },
      '00200037': { vr: 'DS', Value: [1, 0, 0, 0, 1, 0] },
      '00081030': { vr: 'LO', Value: ['Knee & <hip> "L"\u0001'] },
      '00400275': { vr: 'SQ', Value: [{ '00401001': { vr: 'SH', Value: ['RP1'] } }] },
      '7FE00010': { vr: 'OW', BulkDataURI: 'http://h/x?a=1&b=2' },
      '00291010': { vr: 'OB', InlineBinary: 'AAEC' },
      '00080061': { vr: 'CS', Value: ['CT', null] },
    });
    expect(xml).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xml:space="preserve">' +
        '<DicomAttribute tag="00080020" vr="DA" keyword="StudyDate"><Value number="1">20240115</Value></DicomAttribute>' +
        '<DicomAttribute tag="00080061" vr="CS" keyword="ModalitiesInStudy"><Value number="1">CT</Value><Value number="2"/></DicomAttribute>' +
        '<DicomAttribute tag="00081030" vr="LO" keyword="StudyDescription"><Value number="1">Knee &amp; &lt;hip&gt; &quot;L&quot;\ufffd</Value></DicomAttribute>' +
        '<DicomAttribute tag="00100010" vr="PN" keyword="PatientName"><PersonName number="1">' +
        '<Alphabetic><FamilyName>Yamada</FamilyName><GivenName>Tarou</GivenName></Alphabetic>' +
        '<Ideographic><FamilyName>山田</FamilyName><GivenName>太郎</GivenName></Ideographic></PersonName></DicomAttribute>' +
        '<DicomAttribute tag="00200037" vr="DS" keyword="ImageOrientationPatient">' +
        '<Value number="1">1</Value><Value number="2">0</Value><Value number="3">0</Value>' +
        '<Value number="4">0</Value><Value number="5">1</Value><Value number="6">0</Value></DicomAttribute>' +
        '<DicomAttribute tag="00291010" vr="OB"><InlineBinary>AAEC</InlineBinary></DicomAttribute>' +
        '<DicomAttribute tag="00400275" vr="SQ" keyword="RequestAttributesSequence"><Item number="1">' +
        '<DicomAttribute tag="00401001" vr="SH" keyword="RequestedProcedureID"><Value number="1">RP1</Value></DicomAttribute>' +
        '</Item></DicomAttribute>' +
        '<DicomAttribute tag="7FE00010" vr="OW" keyword="PixelData"><BulkData uri="http://h/x?a=1&amp;b=2"/></DicomAttribute>' +
        '</NativeDicomModel>\n',
    );
  });

  it('writes a private data element as gggg00ee with the privateCreator of its block, in items too (PS3.19 A.1.5)', () => {
    const xml = nativeDicomXml({
      '00100020': { vr: 'LO', Value: ['P1'] },
      '00290010': { vr: 'LO', Value: ['ACME 1.0'] },
      '00290011': { vr: 'LO', Value: ['OTHER & CO'] },
      '00291010': { vr: 'LO', Value: ['acme ten'] },
      '00291105': { vr: 'US', Value: [5] },
      '00411001': { vr: 'ST', Value: ['no creator'] },
      '00400275': {
        vr: 'SQ',
        Value: [
          { '00090012': { vr: 'LO', Value: ['ITEM CO'] }, '00091201': { vr: 'SH', Value: ['in item'] } },
        ],
      },
    });
    const doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (_n: string, _p: unknown, _l: boolean, isAttr: boolean) => !isAttr,
    }).parse(xml);
    const attrs = (set: { DicomAttribute: Record<string, unknown>[] }) =>
      set.DicomAttribute.map((a) => ({
        tag: a.tag,
        privateCreator: a.privateCreator,
        keyword: a.keyword,
        value: (a.Value as { '#text': unknown }[] | undefined)?.[0]?.['#text'],
      }));
    const top = doc.NativeDicomModel[0];
    expect(attrs(top)).toEqual([
      { tag: '00100020', privateCreator: undefined, keyword: 'PatientID', value: 'P1' },
      { tag: '00290010', privateCreator: 'ACME 1.0', keyword: undefined, value: 'acme ten' },
      { tag: '00290005', privateCreator: 'OTHER & CO', keyword: undefined, value: 5 },
      { tag: '00400275', privateCreator: undefined, keyword: 'RequestAttributesSequence', value: undefined },
      { tag: '00411001', privateCreator: undefined, keyword: undefined, value: 'no creator' },
    ]);
    expect(attrs(top.DicomAttribute[3].Item[0])).toEqual([
      { tag: '00090001', privateCreator: 'ITEM CO', keyword: undefined, value: 'in item' },
    ]);
  });
});
