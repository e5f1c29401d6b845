// A person name is stored with up to three component groups, alphabetic, ideographic and phonetic (PS3.5
// §6.2.1.2): `Yamada^Tarou=山田^太郎=やまだ^たろう`. A Japanese or Korean site searches by the ideographic or
// phonetic form, so a key of one group (no '=') is matched against each stored group, and a key with '=' group by
// group, in QIDO-RS and C-FIND alike. Until 7 Dec 2026 a key of one group was matched against the alphabetic group
// alone and a key with '=' against the whole stored value: `PatientName=山田*` found nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { findscuTo } from './support/dcmtk.js';
import { makeInstance, uid, YAMADA_ISO_2022_IR_87 } from './support/fixtures.js';
import { postStow, startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
/** やまだ^たろう in JIS X 0208, between ESC $ B and ESC ( B (PS3.5 Annex H). */
const YAMADA_PHONETIC_IR_87 = Buffer.from('1b24422464245e24401b28425e1b2442243f246d24261b2842', 'hex');
/** 山田* as a C-FIND key in ISO 2022 IR 87: the kanji between the escapes, the wildcard in ASCII. */
const YAMADA_KEY_IR_87 = Buffer.concat([Buffer.from('1b24423b3345441b2842', 'hex'), Buffer.from('*')]);

describe.each(backends())('person names matched on their component groups, on %s', (backend) => {
  let s: TestServer;
  const prefix = `PNG-${uid(1)}`;
  const studies: string[] = [];

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'PNGSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    const iso2022 = Buffer.concat([YAMADA_ISO_2022_IR_87, Buffer.from('='), YAMADA_PHONETIC_IR_87]);
    const stored: {
      patientName?: string;
      referringPhysician?: string;
      extra?: Parameters<typeof makeInstance>[0]['extra'];
    }[] = [
      // 0: as a Japanese modality sends it, ISO 2022 IR 6 and ISO 2022 IR 87.
      {
        extra: [
          { tag: t(0x0008, 0x0005), vr: 'CS', value: ['ISO 2022 IR 6', 'ISO 2022 IR 87'] },
          {
            tag: t(0x0010, 0x0010),
            vr: 'PN',
            value: iso2022.length % 2 ? Buffer.concat([iso2022, Buffer.from(' ')]) : iso2022,
          },
        ],
      },
      // 1: the same name in UTF-8.
      { patientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう' },
      {
        patientName: 'Yamamoto^Hanako=山本^花子=やまもと^はなこ',
        referringPhysician: 'Yamada^Tarou=山田^太郎',
      },
      { patientName: 'Doe^John' },
    ];
    const parts = stored.map((spec, i) => {
      studies.push(uid(2));
      return makeInstance({
        studyUid: studies[i]!,
        seriesUid: uid(3),
        sopInstanceUid: uid(4),
        patientId: `${prefix}-${i}`,
        ...spec,
      });
    });
    const res = await postStow(s, parts);
    expect(res.status, await res.clone().text()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const qido = async (key: string, value: string) => {
    const res = await fetch(
      `${s.dicomweb}/studies?PatientID=${prefix}-*&${key}=${encodeURIComponent(value)}`,
      { headers: { Authorization: `Bearer ${s.token}` } },
    );
    expect(res.status, await res.clone().text()).toBe(200);
    const rows = (await res.json()) as { '00100020': { Value: string[] } }[];
    return rows.map((r) => Number(r['00100020'].Value[0]!.slice(prefix.length + 1))).sort();
  };

  it.each([
    // One group: any stored group, exact or by wildcard, ignoring case.
    ['山田*', [0, 1]],
    ['山田^太郎', [0, 1]],
    ['山田^太?', [0, 1]],
    ['*^太郎', [0, 1]],
    ['やまだ*', [0, 1]],
    ['やまだ^たろう', [0, 1]],
    ['山*', [0, 1, 2]],
    ['yamada^tarou', [0, 1]],
    ['YAMA*', [0, 1, 2]],
    ['doe^john', [3]],
    ['山田^花子', []],
    // With '=': each group given matched against the group in its place; an empty one (or '*') leaves it open.
    ['Yamada^Tarou=山田^太郎=やまだ^たろう', [0, 1]],
    ['yamada^tarou=山田^太郎', [0, 1]],
    ['=山田*', [0, 1]],
    ['==やまだ^たろう', [0, 1]],
    ['*=山*', [0, 1, 2]],
    ['=やまだ*', []],
    ['Yamada^Tarou=山本^花子', []],
    ['Yamamoto^Hanako=', [2]],
    ['山本^花子=', []],
  ])('QIDO-RS PatientName=%s finds %j', async (name, expected) => {
    expect(await qido('PatientName', name)).toEqual(expected);
  });

  it('matches ReferringPhysicianName on its component groups too', async () => {
    expect(await qido('ReferringPhysicianName', '山田*')).toEqual([2]);
    expect(await qido('ReferringPhysicianName', '=山田^太郎')).toEqual([2]);
    expect(await qido('ReferringPhysicianName', 'house^gregory')).toEqual([0, 1, 3]);
    // A '*' stays inside its group: until 7 Dec 2026 it reached across the '=' into the next.
    expect(await qido('ReferringPhysicianName', 'Yam*太郎')).toEqual([]);
  });

  it('refuses a name of more than three component groups', async () => {
    const res = await fetch(`${s.dicomweb}/studies?PatientName=${encodeURIComponent('a=b=c=d')}`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('more than three component groups');
  });

  const cfind = async (...keys: string[]) => {
    const r = await findscuTo(
      s.dicomPort,
      'PNGSCU',
      'QueryRetrieveLevel=STUDY',
      `PatientID=${prefix}-*`,
      ...keys,
      'StudyInstanceUID',
    );
    expect(r.code, r.stderr).toBe(0);
    return [...r.stderr.matchAll(/\(0020,000d\) UI \[([\d.]+)\0?\]/g)]
      .map((m) => studies.indexOf(m[1]!))
      .sort();
  };

  it('C-FIND finds the name by its ideographic and phonetic groups, in UTF-8 and in ISO 2022 IR 87', async () => {
    expect(await cfind('SpecificCharacterSet=ISO_IR 192', 'PatientName=山田*')).toEqual([0, 1]);
    expect(await cfind('SpecificCharacterSet=ISO_IR 192', 'PatientName=やまだ^たろう')).toEqual([0, 1]);
    expect(await cfind('SpecificCharacterSet=ISO_IR 192', 'PatientName=Yamada^Tarou=山田^太郎')).toEqual([
      0, 1,
    ]);
    expect(await cfind('SpecificCharacterSet=ISO_IR 192', 'PatientName==山本*')).toEqual([2]);
    expect(
      await cfind(
        'SpecificCharacterSet=\\ISO 2022 IR 87',
        `PatientName=${YAMADA_KEY_IR_87.toString('latin1')}`,
      ),
    ).toEqual([0, 1]);
  });
});
