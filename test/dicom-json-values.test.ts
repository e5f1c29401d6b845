import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from './support/backends.js';
import { multipartParts } from './support/http.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { IMPLICIT_LE, makeInstance, stowBody, uid } from './support/fixtures.js';

type Json = Record<string, { vr: string; Value?: unknown[]; InlineBinary?: string }>;

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

describe.each(backends())('values in DICOM JSON as stored by STOW-RS on %s', (backend) => {
  let s: TestServer;
  const auth = () => ({ Authorization: `Bearer ${s.token}` });

  const stow = async (bytes: Buffer) => {
    const { body, contentType } = stowBody([{ bytes }]);
    return fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
  };
  const metadata = async (ids: { studyUid: string; seriesUid: string; sopInstanceUid: string }) => {
    const res = await fetch(
      `${s.dicomweb}/studies/${ids.studyUid}/series/${ids.seriesUid}/instances/${ids.sopInstanceUid}/metadata`,
      { headers: { ...auth(), Accept: 'application/dicom+json' } },
    );
    expect(res.status, await res.clone().text()).toBe(200);
    return ((await res.json()) as Json[])[0]!;
  };

  beforeAll(async () => {
    s = await startTestServer(backend);
  });
  afterAll(async () => {
    expect(s.unexpected).toEqual([]);
    await s.stop();
  });

  it('serves "US or SS" pixel values of an implicit VR object with signed pixels as SS, negative', async () => {
    const ids = { studyUid: uid(1), seriesUid: uid(2), sopInstanceUid: uid(3) };
    const res = await stow(
      makeInstance({
        ...ids,
        transferSyntaxUid: IMPLICIT_LE,
        extra: [
          { tag: t(0x0028, 0x0103), vr: 'US', value: 1 },
          { tag: t(0x0028, 0x0106), vr: 'SS', value: -2000 },
          { tag: t(0x0028, 0x0120), vr: 'SS', value: -2000 },
        ],
      }),
    );
    expect(res.status, await res.clone().text()).toBe(200);
    const meta = await metadata(ids);
    expect(meta['00280106']).toEqual({ vr: 'SS', Value: [-2000] });
    expect(meta['00280120']).toEqual({ vr: 'SS', Value: [-2000] });
  });

  it('stores an object with an element whose VR it does not know, that element as UN (PS3.5 §6.2)', async () => {
    const ids = { studyUid: uid(4), seriesUid: uid(5), sopInstanceUid: uid(6) };
    const bytes = makeInstance({
      ...ids,
      extra: [
        { tag: t(0x0009, 0x0010), vr: 'LO', value: 'ACME 1.0' },
        { tag: t(0x0009, 0x1001), vr: 'UN', value: Buffer.from([1, 2, 3, 4]) },
      ],
    });
    bytes.write('XX', bytes.indexOf(Buffer.from([0x09, 0, 0x01, 0x10, 0x55, 0x4e])) + 4, 'latin1');
    const res = await stow(bytes);
    const body = await res.text();
    expect(res.status, body).toBe(202);
    expect(res.headers.get('warning'), body).toContain('which this archive does not know: read as UN');
    const meta = await metadata(ids);
    expect(meta['00091001']).toEqual({ vr: 'UN', InlineBinary: 'AQIDBA==' });
  });

  it('says in a Warning header in plain words that an element has an odd length (PS3.5 section 7.1.1)', async () => {
    const ids = { studyUid: uid(10), seriesUid: uid(11), sopInstanceUid: uid(12) };
    const even = makeInstance({ ...ids, extra: [{ tag: t(0x0009, 0x0010), vr: 'LO', value: 'ACME' }] });
    // (0009,0010) LO 'ACME' cut to the three bytes 'ACM': its length 3, odd.
    const at = even.indexOf(Buffer.from([0x09, 0, 0x10, 0, 0x4c, 0x4f, 4, 0]));
    const odd = Buffer.concat([
      even.subarray(0, at + 6),
      Buffer.from([3, 0]),
      Buffer.from('ACM'),
      even.subarray(at + 12),
    ]);
    const res = await stow(odd);
    const body = await res.text();
    expect(res.status, body).toBe(202);
    // Until 6 Dec 2026 it read "PS3.5 U+00A77.1.1": the section sign written as its code point.
    expect(res.headers.get('warning'), body).toContain(
      `element (0009,0010) has an odd length 3 (PS3.5 section 7.1.1)`,
    );
    expect(res.headers.get('warning')).toMatch(/^299 \S+ "[\x20-\x7e]*"$/);
  });

  it('leaves group length elements out of metadata and QIDO results, a stale one too', async () => {
    const ids = { studyUid: uid(13), seriesUid: uid(14), sopInstanceUid: uid(15) };
    const res = await stow(
      makeInstance({
        ...ids,
        extra: [
          { tag: t(0x0008, 0x0000), vr: 'UL', value: 0 },
          { tag: t(0x0010, 0x0000), vr: 'UL', value: 4 },
        ],
      }),
    );
    expect(res.status, await res.text()).toBe(200);
    const meta = await metadata(ids);
    expect(meta['00080060']).toEqual({ vr: 'CS', Value: ['CT'] });
    // Until 6 Dec 2026 they were there: "00080000":{"vr":"UL","Value":[0]}.
    expect(Object.keys(meta).filter((k) => k.endsWith('0000'))).toEqual([]);
    const found = await fetch(`${s.dicomweb}/studies/${ids.studyUid}/instances?includefield=all`, {
      headers: { ...auth(), Accept: 'application/dicom+json' },
    });
    expect(found.status, await found.clone().text()).toBe(200);
    const rows = (await found.json()) as Json[];
    expect(rows.length).toBe(1);
    expect(rows[0]!['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doe^Jane' }] });
    expect(Object.keys(rows[0]!).filter((k) => k.endsWith('0000'))).toEqual([]);
  });

  it('gives Overlay Data of an implicit VR object OW, in metadata and converted to explicit VR (PS3.5 A.1)', async () => {
    const ids = { studyUid: uid(16), seriesUid: uid(17), sopInstanceUid: uid(18) };
    const overlay = Buffer.alloc((8 * 8) / 8, 0xa5);
    const res = await stow(
      makeInstance({
        ...ids,
        transferSyntaxUid: IMPLICIT_LE,
        extra: [
          { tag: t(0x6000, 0x0010), vr: 'US', value: 8 },
          { tag: t(0x6000, 0x0011), vr: 'US', value: 8 },
          { tag: t(0x6000, 0x0040), vr: 'CS', value: 'G' },
          { tag: t(0x6000, 0x0050), vr: 'SS', value: [1, 1] },
          { tag: t(0x6000, 0x0100), vr: 'US', value: 1 },
          { tag: t(0x6000, 0x0102), vr: 'US', value: 0 },
          { tag: t(0x6000, 0x3000), vr: 'OW', value: overlay },
        ],
      }),
    );
    expect(res.status, await res.text()).toBe(200);
    // Until 6 Dec 2026 OB, the dictionary's first of "OB or OW"; dcm2json and Orthanc say OW.
    expect((await metadata(ids))['60003000']).toEqual({ vr: 'OW', InlineBinary: overlay.toString('base64') });
    const retrieved = await fetch(
      `${s.dicomweb}/studies/${ids.studyUid}/series/${ids.seriesUid}/instances/${ids.sopInstanceUid}`,
      { headers: { ...auth(), Accept: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' } },
    );
    expect(retrieved.status).toBe(200);
    const dir = mkdtempSync(join(tmpdir(), 'custos-overlay-'));
    try {
      writeFileSync(join(dir, 'out.dcm'), Buffer.from(await retrieved.arrayBuffer()));
      const dump = execFileSync('dcmdump', ['-q', '+P', '6000,3000', join(dir, 'out.dcm')]).toString();
      expect(dump).toMatch(/^\(6000,3000\) OW a5a5\\a5a5\\a5a5\\a5a5 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a standard attribute sent as UN as its VR for metadata and QIDO, and keeps the bytes (PS3.5 §6.2.2)', async () => {
    const ids = { studyUid: uid(7), seriesUid: uid(8), sopInstanceUid: uid(9) };
    const bytes = makeInstance({
      ...ids,
      extra: [{ tag: t(0x0018, 0x0015), vr: 'UN', value: Buffer.from('CHEST ') }],
    });
    const res = await stow(bytes);
    expect(res.status, await res.text()).toBe(200);
    expect((await metadata(ids))['00180015']).toEqual({ vr: 'CS', Value: ['CHEST'] });
    const found = await fetch(
      `${s.dicomweb}/series?BodyPartExamined=CHEST&StudyInstanceUID=${ids.studyUid}`,
      { headers: { ...auth(), Accept: 'application/dicom+json' } },
    );
    expect(found.status, await found.clone().text()).toBe(200);
    const rows = (await found.json()) as Json[];
    expect(rows.map((r) => r['0020000E']?.Value)).toEqual([[ids.seriesUid]]);
    expect(rows[0]!['00180015']).toEqual({ vr: 'CS', Value: ['CHEST'] });
    const retrieved = await fetch(`${s.dicomweb}/studies/${ids.studyUid}`, { headers: auth() });
    expect(retrieved.status).toBe(200);
    expect((await multipartParts(retrieved))[0]!.body).toEqual(bytes);
  });
});
