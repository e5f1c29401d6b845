import { describe, expect, it } from 'vitest';
import { CustosError } from '../domain/errors.js';
import { datasetToJson, jsonToWriteElements, type DicomJsonDataset } from './dicom-json.js';
import { readNativeDicomXml } from './dicom-xml-reader.js';
import { nativeDicomXml } from './dicom-xml.js';
import { parsePart10 } from './part10-parser.js';
import { writePart10 } from './part10-writer.js';
import { TransferSyntax } from './tags.js';

/** The data set a DICOM JSON object writes, as DICOM JSON again (numbers as numbers, and so on). */
async function written(json: DicomJsonDataset): Promise<DicomJsonDataset> {
  const elements = jsonToWriteElements(json, () => Buffer.from([7, 7]));
  const bytes = writePart10(elements, { transferSyntaxUid: TransferSyntax.ExplicitVRLittleEndian });
  return datasetToJson((await parsePart10(bytes)).dataset);
}

describe('readNativeDicomXml (PS3.19 A.1, STOW-RS application/dicom+xml)', () => {
  it('reads what nativeDicomXml writes back to the same data set', async () => {
    const json: DicomJsonDataset = {
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00080008': { vr: 'CS', Value: ['ORIGINAL', null, 'AXIAL'] },
      '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
      '00080018': { vr: 'UI', Value: ['1.2.3.4'] },
      '00081030': { vr: 'LO', Value: ['<Head & "Neck">'] },
      '00100010': {
        vr: 'PN',
        Value: [{ Alphabetic: 'Yamada^Tarou^^Dr', Ideographic: '山田^太郎' }],
      },
      '00200013': { vr: 'IS', Value: [7] },
      '00280030': { vr: 'DS', Value: [0.5, 0.25] },
      '00280010': { vr: 'US', Value: [2] },
      '00209165': { vr: 'AT', Value: ['00100020'] },
      '00081032': {
        vr: 'SQ',
        Value: [{ '00080100': { vr: 'SH', Value: ['X1'] } }, { '00080100': { vr: 'SH', Value: ['X2'] } }],
      },
      '00091010': { vr: 'OB', InlineBinary: Buffer.from([1, 2, 3, 4]).toString('base64') },
      '7FE00010': { vr: 'OB', BulkDataURI: 'http://client.invalid/px' },
    };
    const xml = nativeDicomXml(json as never);
    const back = readNativeDicomXml(xml);
    expect(back['7FE00010']).toEqual({ vr: 'OB', BulkDataURI: 'http://client.invalid/px' });
    expect(await written(back)).toEqual(await written(json));
  });

  it('places private data elements sent as gggg00ee with a privateCreator in a block of their creator', async () => {
    // As dcm4che writes them: no Private Creator elements, the block left to the recipient.
    const dcm4che = `<NativeDicomModel xml:space="preserve">
        <DicomAttribute tag="00290010" privateCreator="ACME 1.0" vr="LO"><Value number="1">acme ten</Value></DicomAttribute>
        <DicomAttribute tag="00290005" privateCreator="OTHER" vr="US"><Value number="1">5</Value></DicomAttribute>
        <DicomAttribute tag="00290011" privateCreator="ACME 1.0" vr="LO"><Value number="1">acme eleven</Value></DicomAttribute>
        <DicomAttribute tag="00081032" vr="SQ"><Item number="1">
          <DicomAttribute tag="00090001" privateCreator="ITEM CO" vr="SH"><Value number="1">in item</Value></DicomAttribute>
        </Item></DicomAttribute>
      </NativeDicomModel>`;
    expect(readNativeDicomXml(dcm4che)).toEqual({
      '00290010': { vr: 'LO', Value: ['ACME 1.0'] },
      '00291010': { vr: 'LO', Value: ['acme ten'] },
      '00291011': { vr: 'LO', Value: ['acme eleven'] },
      '00290011': { vr: 'LO', Value: ['OTHER'] },
      '00291105': { vr: 'US', Value: ['5'] },
      '00081032': {
        vr: 'SQ',
        Value: [
          { '00090010': { vr: 'LO', Value: ['ITEM CO'] }, '00091001': { vr: 'SH', Value: ['in item'] } },
        ],
      },
    });
    // As fo-dicom writes them: the whole tag, the Private Creator element sent as well (after them, here).
    const foDicom = `<NativeDicomModel>
        <DicomAttribute tag="00291201" vr="SH" privateCreator="ACME 1.0"><Value number="1">x</Value></DicomAttribute>
        <DicomAttribute tag="00290012" vr="LO"><Value number="1">ACME 1.0</Value></DicomAttribute>
      </NativeDicomModel>`;
    expect(readNativeDicomXml(foDicom)).toEqual({
      '00290012': { vr: 'LO', Value: ['ACME 1.0'] },
      '00291201': { vr: 'SH', Value: ['x'] },
    });
    // And what Custos writes comes back to the same data set, blocks and all.
    const json: DicomJsonDataset = {
      '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
      '00080018': { vr: 'UI', Value: ['1.2.3.4'] },
      '00290010': { vr: 'LO', Value: ['ACME 1.0'] },
      '00290011': { vr: 'LO', Value: ['OTHER'] },
      '00291010': { vr: 'LO', Value: ['acme ten'] },
      '00291105': { vr: 'US', Value: [5] },
    };
    expect(await written(readNativeDicomXml(nativeDicomXml(json as never)))).toEqual(await written(json));
  });

  it('takes comments, CDATA, character references and items out of order', () => {
    const xml = `\ufeff<?xml version="1.0"?><!-- a comment -->
      <NativeDicomModel>
        <DicomAttribute tag="00081030" vr="LO"><Value number="1"><![CDATA[A<B]]>&#x26;&#67;</Value></DicomAttribute>
        <DicomAttribute tag="00081032" vr="SQ">
          <Item number="2"><DicomAttribute tag="00080100" vr="SH"><Value number="1">second</Value></DicomAttribute></Item>
          <Item number="1"><DicomAttribute tag="00080100" vr="SH"><Value number="1">first</Value></DicomAttribute></Item>
        </DicomAttribute>
      </NativeDicomModel>`;
    expect(readNativeDicomXml(xml)).toEqual({
      '00081030': { vr: 'LO', Value: ['A<B&C'] },
      '00081032': {
        vr: 'SQ',
        Value: [
          { '00080100': { vr: 'SH', Value: ['first'] } },
          { '00080100': { vr: 'SH', Value: ['second'] } },
        ],
      },
    });
  });

  it.each([
    ['<!DOCTYPE x [<!ENTITY a "b">]><NativeDicomModel/>', 'a DOCTYPE is not accepted'],
    [
      '<NativeDicomModel><DicomAttribute tag="00100010" vr="PN"></NativeDicomModel>',
      "'</NativeDicomModel>' closes '<DicomAttribute>'",
    ],
    ['<Other/>', "the document element is 'Other', not NativeDicomModel"],
    [
      '<NativeDicomModel><DicomAttribute tag="0010" vr="PN"/></NativeDicomModel>',
      'the tag must be eight hexadecimal digits',
    ],
    [
      '<NativeDicomModel><DicomAttribute tag="00100020" vr="LO"><Value>x</Value></DicomAttribute></NativeDicomModel>',
      'every Value needs a number attribute',
    ],
    [
      '<NativeDicomModel><DicomAttribute tag="7FE00010" vr="OB"><BulkData uuid="1"/></DicomAttribute></NativeDicomModel>',
      'BulkData needs a uri attribute',
    ],
    ['<NativeDicomModel>&bogus;</NativeDicomModel>', "unknown entity '&bogus;'"],
    ['<NativeDicomModel/>trailing', 'text after the document element'],
  ])('refuses %s with 0xC000 naming the fault', (xml, message) => {
    let error: unknown;
    try {
      readNativeDicomXml(xml);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CustosError);
    expect((error as CustosError).message).toContain(message);
    expect((error as CustosError).dicomStatus).toBe(0xc000);
  });
});
