// ISO 2022 code extensions (PS3.5 §6.1.2.5): before a control character, and before the delimiters of the value's
// VR ('\' between values; '^' and '=' too in a PN), the sets named by value 1 of Specific Character Set are active
// again (§6.1.2.5.3). A sender that leaves Cyrillic designated to G1 before a caret has the rest of the name read in
// Latin-1, as dcmtk reads it. Until 7 Dec 2026 Custos read it in the set left in G1: 'Иван^Müller' came out of
// WADO-RS and C-FIND as 'Иван^Mќller'. dcmtk (dcmconv +U8) is the oracle for each value.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends, type Backend } from './support/backends.js';
import { findscuWith, storescuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
const ESC_CYRILLIC_G1 = Buffer.from('\x1b-L', 'latin1');
const ivan = Buffer.from([0xb8, 0xd2, 0xd0, 0xdd]); // Иван in ISO 8859-5
const muller = Buffer.from('Müller', 'latin1');
const even = (b: Buffer) => (b.length % 2 ? Buffer.concat([b, Buffer.from(' ')]) : b);
/** Cyrillic designated to G1 and not designated back before the delimiter `sep`. */
const leftOpen = (sep: string, before = '') =>
  even(Buffer.concat([Buffer.from(before), ESC_CYRILLIC_G1, ivan, Buffer.from(sep, 'latin1'), muller]));

/** What dcmtk reads a value of `tag` (as dcmdump writes it, e.g. '0010,0010') as, converted to UTF-8. */
function dcmtkReads(file: string, tag: string): string {
  const converted = `${file}.utf8.dcm`;
  execFileSync('dcmconv', ['+U8', file, converted]);
  const dump = execFileSync('dcmdump', ['+U8', '-q', '+L', converted]).toString('utf8');
  const value = new RegExp(`^\\(${tag}\\) [A-Z]{2} \\[([^\\]]*)\\]`, 'm').exec(dump)?.[1];
  if (value === undefined) throw new Error(`dcmdump shows no ${tag}:\n${dump}`);
  return value;
}

/**
 * A server on `backend` that holds `instance`, stored by storescu from a registered AE as the file `name` in a
 * directory of the test's own (`dir()`); both are removed after the describe block's tests.
 */
function servingOneStored(backend: Backend, name: string, instance: () => Buffer) {
  const held = { s: undefined as unknown as TestServer, dir: '' };
  beforeAll(async () => {
    held.s = await startTestServer(backend);
    await held.s.app.aes.add(systemPrincipal('test'), {
      title: 'CXSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    held.dir = await mkdtemp(join(tmpdir(), 'custos-charset-'));
    await writeFile(join(held.dir, name), instance());
    const stored = await storescuTo(held.s.dicomPort, 'CXSCU', [join(held.dir, name)]);
    expect(stored.code, stored.stderr).toBe(0);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(held.s, () => rm(held.dir, { recursive: true, force: true }))).toEqual([]);
  });
  return { server: () => held.s, dir: () => held.dir, file: () => join(held.dir, name) };
}

describe.each(backends())('ISO 2022 code extensions reset at delimiters, on %s', (backend) => {
  const prefix = `CX-${uid(1)}`;
  const studyUid = uid(2);
  const one = servingOneStored(backend, 'left-open.dcm', () =>
    makeInstance({
      studyUid,
      seriesUid: uid(3),
      sopInstanceUid: uid(4),
      patientId: `${prefix}-1`,
      extra: [
        { tag: t(0x0008, 0x0005), vr: 'CS', value: ['ISO 2022 IR 100', 'ISO 2022 IR 144'] },
        { tag: t(0x0010, 0x0010), vr: 'PN', value: leftOpen('^', 'Ivan^Muller=') },
        { tag: t(0x0010, 0x1001), vr: 'PN', value: leftOpen('=', 'Ivan=') },
        { tag: t(0x0008, 0x1030), vr: 'LO', value: leftOpen('\\') },
        { tag: t(0x0010, 0x4000), vr: 'LT', value: leftOpen('\r\n') },
        // Not delimiters of these VRs: the Cyrillic set stays.
        { tag: t(0x0008, 0x0050), vr: 'SH', value: leftOpen('^') },
        { tag: t(0x0010, 0x2180), vr: 'SH', value: leftOpen('=') },
      ],
    }),
  );
  const file = one.file;

  it('WADO-RS metadata reads each value as dcmtk does', async () => {
    const s = one.server();
    const res = await fetch(`${s.dicomweb}/studies/${studyUid}/metadata`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status).toBe(200);
    const [meta] = (await res.json()) as Record<string, { Value?: unknown[] }>[];
    const pn = (tag: string) => {
      const v = meta![tag]!.Value![0] as Record<string, string>;
      return [v.Alphabetic ?? '', v.Ideographic ?? '', v.Phonetic ?? ''].join('=').replace(/=+$/, '');
    };
    const text = (tag: string) => (meta![tag]!.Value as string[]).join('\\');

    expect(pn('00100010')).toBe('Ivan^Muller=Иван^Müller');
    expect(pn('00101001')).toBe('Ivan=Иван=Müller');
    expect(text('00081030')).toBe('Иван\\Müller');
    expect(text('00104000')).toBe('Иван\r\nMüller');
    expect(text('00080050')).toBe('Иван^Mќller');
    expect(text('00102180')).toBe('Иван=Mќller');

    expect(pn('00100010')).toBe(dcmtkReads(file(), '0010,0010'));
    expect(pn('00101001')).toBe(dcmtkReads(file(), '0010,1001'));
    expect(text('00081030')).toBe(dcmtkReads(file(), '0008,1030'));
    expect(text('00104000')).toBe(dcmtkReads(file(), '0010,4000'));
    expect(text('00080050')).toBe(dcmtkReads(file(), '0008,0050'));
    expect(text('00102180')).toBe(dcmtkReads(file(), '0010,2180'));
  });

  it('C-FIND answers findscu with the name dcmtk reads from the object', async () => {
    const s = one.server();
    const out = join(one.dir(), 'answers');
    await mkdir(out);
    const r = await findscuWith(
      s.dicomPort,
      'CXSCU',
      ['QueryRetrieveLevel=STUDY', `PatientID=${prefix}-*`, 'PatientName'],
      { flags: ['-X', '-od', out] },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(dcmtkReads(join(out, 'rsp0001.dcm'), '0010,0010')).toBe(dcmtkReads(file(), '0010,0010'));
    expect(dcmtkReads(join(out, 'rsp0001.dcm'), '0010,0010')).toBe('Ivan^Muller=Иван^Müller');
  });

  it('QIDO-RS finds the name by its Latin-1 given name in the ideographic group', async () => {
    const s = one.server();
    const res = await fetch(
      `${s.dicomweb}/studies?PatientID=${prefix}-*&PatientName=${encodeURIComponent('=*^Müller')}`,
      { headers: { Authorization: `Bearer ${s.token}` } },
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as unknown[]).length).toBe(1);
  });
});

// JIS X 0201 (ISO_IR 13) has a YEN SIGN at 0x5C; in SH, LO, PN and UC that byte is the delimiter between values
// (PS3.5 H.1.1 Note 3). Until 7 Dec 2026 Custos read it as a backslash in LT, ST and UT too, where dcmtk reads '¥'.
describe.each(backends())('JIS X 0201 yen sign, on %s', (backend) => {
  const studyUid = uid(2);
  // ﾔﾏ 0x5C ﾀﾛ
  const yen = Buffer.from([0xd4, 0xcf, 0x5c, 0xc0, 0xdb, 0x20]);
  const one = servingOneStored(backend, 'jis-x0201.dcm', () =>
    makeInstance({
      studyUid,
      seriesUid: uid(3),
      sopInstanceUid: uid(4),
      patientId: `JX-${uid(1)}`,
      extra: [
        { tag: t(0x0008, 0x0005), vr: 'CS', value: 'ISO_IR 13' },
        { tag: t(0x0010, 0x4000), vr: 'LT', value: yen },
        { tag: t(0x0008, 0x1030), vr: 'LO', value: yen },
      ],
    }),
  );
  const file = one.file;

  it('WADO-RS metadata has the yen sign in LT, as dcmtk reads it, and two values in LO', async () => {
    const s = one.server();
    const res = await fetch(`${s.dicomweb}/studies/${studyUid}/metadata`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status).toBe(200);
    const [meta] = (await res.json()) as Record<string, { Value: string[] }>[];
    expect(meta!['00104000']!.Value).toEqual(['ﾔﾏ¥ﾀﾛ']);
    expect(meta!['00104000']!.Value[0]).toBe(dcmtkReads(file(), '0010,4000'));
    expect(meta!['00081030']!.Value).toEqual(['ﾔﾏ', 'ﾀﾛ']);
  });
});
