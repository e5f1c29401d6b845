// The character set of C-FIND answers (PS3.4 C.4.1.1.3.2): an answer is written in the Specific Character Set of
// the query where Custos can write that set (a single-byte set, UTF-8, the default repertoire) and every value of
// the answer fits it, and in UTF-8 (ISO_IR 192) otherwise. Checked on the bytes findscu extracts (-X), as a requestor reading only its own set reads them. Until
// 8 Dec 2026 every answer was in UTF-8: a workstation querying in ISO_IR 100 that knows no UTF-8 showed 'MÃ¼ller'.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { Tags } from '../src/dicom/tags.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, storescuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const PATIENT_ID = 0x00100020;

/** One extracted answer: its Specific Character Set as written, its raw bytes, and its Patient ID and Name read. */
interface Answer {
  charset: string | undefined;
  bytes: Buffer;
  patientId: string;
  patientName: string;
}

describe.each(backends())('the character set of C-FIND answers, on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const prefix = `CS-${uid(1)}`;
  /** Patient ID suffix to the name stored under it, each stored in ISO_IR 192. */
  const names: Record<string, string> = {
    latin: 'Müller^Renée',
    wide: 'Gößmann^Zoë=山田^太郎',
    ascii: 'Smith^John',
    cyrillic: 'Петров^Пётр',
  };
  /** Patient ID suffix to the bytes of the name stored under it, in an object without Specific Character Set. */
  const undeclaredNames: Record<string, Buffer> = {
    nosetutf8: Buffer.from('Jönsson^Åsa', 'utf8'),
    nosetlatin: Buffer.from('Håkansson^Märta', 'latin1'),
  };
  let storedUndeclared: { code: number | null; stderr: string };

  beforeAll(async () => {
    // NOSETSCU stands for a modality that writes no Specific Character Set: its objects are taken at the lenient
    // level, where the missing Type 1C attribute is a warning (at the standard level they wait in quarantine).
    s = await startTestServer(backend, { validation: { byAe: { NOSETSCU: 'lenient' } } });
    for (const title of ['CSSCU', 'NOSETSCU'])
      await s.app.aes.add(systemPrincipal('test'), { title, host: '127.0.0.1', port: 104, user: 'admin' });
    dir = await mkdtemp(join(tmpdir(), 'custos-find-charset-'));
    const files: string[] = [];
    for (const [i, [suffix, name]] of Object.entries(names).entries()) {
      const file = join(dir, `${suffix}.dcm`);
      await writeFile(
        file,
        makeInstance({
          studyUid: uid(10 + i * 3),
          seriesUid: uid(11 + i * 3),
          sopInstanceUid: uid(12 + i * 3),
          patientId: `${prefix}-${suffix}`,
          patientName: name,
        }),
      );
      files.push(file);
    }
    const stored = await storescuTo(s.dicomPort, 'CSSCU', files);
    expect(stored.code, stored.stderr).toBe(0);
    // Two objects that declare no Specific Character Set and hold bytes above 0x7F: one in UTF-8, one in Latin-1.
    const undeclared: string[] = [];
    for (const [i, [suffix, name]] of Object.entries(undeclaredNames).entries()) {
      const file = join(dir, `${suffix}.dcm`);
      await writeFile(
        file,
        makeInstance({
          studyUid: uid(30 + i * 3),
          seriesUid: uid(31 + i * 3),
          sopInstanceUid: uid(32 + i * 3),
          patientId: `${prefix}-${suffix}`,
          omit: [Tags.SpecificCharacterSet],
          extra: [{ tag: 0x00100010, vr: 'PN', value: name }],
        }),
      );
      undeclared.push(file);
    }
    storedUndeclared = await storescuTo(s.dicomPort, 'NOSETSCU', undeclared, '-d');
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s, () => rm(dir, { recursive: true, force: true }))).toEqual([]);
  });

  /**
   * findscu -X at STUDY level with the identifier `lines` (a dump, `name` the PatientName key's raw bytes), the
   * answers it extracted read back from their files, by Patient ID.
   */
  const find = async (lines: string[], name: Buffer): Promise<Map<string, Answer>> => {
    const out = await mkdtemp(join(dir, 'rsp-'));
    const dump = join(out, 'query.dump');
    const query = join(out, 'query.dcm');
    await writeFile(
      dump,
      Buffer.concat([
        Buffer.from([...lines, '(0008,0052) CS [STUDY]', `(0010,0020) LO [${prefix}-*]`, ''].join('\n')),
        Buffer.from('(0010,0010) PN ['),
        name,
        Buffer.from(']\n'),
      ]),
    );
    execFileSync('dump2dcm', [dump, query], { stdio: 'pipe' });
    const r = await dcmtk('findscu', [
      '-S',
      '-X',
      '-od',
      out,
      '-aet',
      'CSSCU',
      '-aec',
      'CUSTOS',
      '127.0.0.1',
      String(s.dicomPort),
      query,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const answers = new Map<string, Answer>();
    for (const f of (await readdir(out)).filter((n) => n.startsWith('rsp')).sort()) {
      const bytes = await readFile(join(out, f));
      const ds = (await parsePart10(bytes)).dataset;
      const text = (tag: number) => {
        const el = ds.get(tag);
        return el?.kind === 'text' ? el.values.join('\\').trim() : undefined;
      };
      answers.set(text(PATIENT_ID)!.slice(prefix.length + 1), {
        charset: text(Tags.SpecificCharacterSet),
        bytes,
        patientId: text(PATIENT_ID)!,
        patientName: text(0x00100010)!,
      });
    }
    return answers;
  };

  it('answers a query in ISO_IR 100 in ISO_IR 100 where the answer fits it, in ISO_IR 192 where it does not', async () => {
    const answers = await find(['(0008,0005) CS [ISO_IR 100]'], Buffer.from(''));
    expect([...answers.keys()].filter((k) => names[k]).sort()).toEqual([
      'ascii',
      'cyrillic',
      'latin',
      'wide',
    ]);
    const latin = answers.get('latin')!;
    expect(latin.charset).toBe('ISO_IR 100');
    // The name's bytes are Latin-1, as a requestor that reads only ISO_IR 100 reads them; no UTF-8 among them.
    expect(latin.bytes.includes(Buffer.from('Müller^Renée', 'latin1'))).toBe(true);
    expect(latin.bytes.includes(Buffer.from('Müller', 'utf8'))).toBe(false);
    expect(latin.patientName).toBe('Müller^Renée');
    // Latin-1 cannot hold 山田: that answer is written whole in UTF-8 and says so.
    const wide = answers.get('wide')!;
    expect(wide.charset).toBe('ISO_IR 192');
    expect(wide.bytes.includes(Buffer.from('Gößmann^Zoë=山田^太郎', 'utf8'))).toBe(true);
    expect(wide.patientName).toBe('Gößmann^Zoë=山田^太郎');
    expect(answers.get('ascii')!.charset).toBe('ISO_IR 100');
    expect(answers.get('cyrillic')!.charset).toBe('ISO_IR 192');
  });

  it('answers a query in another single-byte set, ISO_IR 144 (Cyrillic), in that set where the answer fits it', async () => {
    const answers = await find(['(0008,0005) CS [ISO_IR 144]'], Buffer.from(''));
    const cyrillic = answers.get('cyrillic')!;
    expect(cyrillic.charset).toBe('ISO_IR 144');
    // ISO 8859-5: П is 0xBF, е 0xD5, т 0xE2, р 0xE0, о 0xDE, в 0xD2, ё 0xF1.
    expect(cyrillic.bytes.includes(Buffer.from('bfd5e2e0ded25ebff1e2e0', 'hex'))).toBe(true);
    expect(cyrillic.patientName).toBe('Петров^Пётр');
    expect(answers.get('ascii')!.charset).toBe('ISO_IR 144');
    // ISO 8859-5 has no ü: that answer is in UTF-8.
    expect(answers.get('latin')!.charset).toBe('ISO_IR 192');
    expect(answers.get('latin')!.patientName).toBe('Müller^Renée');
  });

  it('reads a Latin-1 key of a query in ISO_IR 100 and answers it in ISO_IR 100', async () => {
    const answers = await find(['(0008,0005) CS [ISO_IR100]'], Buffer.from('Müller^Ren*', 'latin1'));
    expect([...answers.keys()]).toEqual(['latin']);
    // A misspelt term is answered by the Defined Term it names.
    expect(answers.get('latin')!.charset).toBe('ISO_IR 100');
    expect(answers.get('latin')!.bytes.includes(Buffer.from('Müller^Renée', 'latin1'))).toBe(true);
  });

  it('answers a query in ISO_IR 192 in ISO_IR 192, and one in no character set in none where the answer is ASCII', async () => {
    const utf8 = await find(['(0008,0005) CS [ISO_IR 192]'], Buffer.from(''));
    expect(new Set([...utf8.values()].map((a) => a.charset))).toEqual(new Set(['ISO_IR 192']));
    expect(utf8.get('latin')!.bytes.includes(Buffer.from('Müller^Renée', 'utf8'))).toBe(true);
    // PS3.4 C.4.1.1.3.2: Specific Character Set is in an answer that needs more than the default repertoire, and
    // only then; an answer that does is written in UTF-8.
    const none = await find([], Buffer.from(''));
    expect(none.get('ascii')!.charset).toBeUndefined();
    expect(none.get('ascii')!.patientName).toBe('Smith^John');
    expect(none.get('latin')!.charset).toBe('ISO_IR 192');
    expect(none.get('latin')!.patientName).toBe('Müller^Renée');
    expect(none.get('wide')!.charset).toBe('ISO_IR 192');
  });

  it('reads bytes above 0x7F without a Specific Character Set as UTF-8 where they are valid UTF-8, else as Latin-1, at ingest and in a C-FIND key alike', async () => {
    expect(storedUndeclared.code, storedUndeclared.stderr).toBe(0);
    expect(storedUndeclared.stderr.match(/DIMSE Status +: 0xb007/g)).toHaveLength(2);
    expect(storedUndeclared.stderr).not.toContain('quarantined');
    // Ingest: the names are indexed as sent, as QIDO-RS shows them.
    const res = await fetch(`${s.dicomweb}/studies?PatientID=${prefix}-noset*&includefield=00100010`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const studies = (await res.json()) as Record<string, { Value: { Alphabetic: string }[] }>[];
    expect(studies.map((st) => st['00100010']!.Value[0]!.Alphabetic).sort()).toEqual([
      'Håkansson^Märta',
      'Jönsson^Åsa',
    ]);
    // C-FIND keys without Specific Character Set are read the same way, and so find those names; the answers need
    // more than the default repertoire, so they are in UTF-8 and say so.
    const utf8 = await find([], Buffer.from('Jönsson*', 'utf8'));
    expect([...utf8.keys()]).toEqual(['nosetutf8']);
    expect(utf8.get('nosetutf8')!.charset).toBe('ISO_IR 192');
    expect(utf8.get('nosetutf8')!.patientName).toBe('Jönsson^Åsa');
    const latin1 = await find([], Buffer.from('Håkansson*', 'latin1'));
    expect([...latin1.keys()]).toEqual(['nosetlatin']);
    expect(latin1.get('nosetlatin')!.patientName).toBe('Håkansson^Märta');
    // A query that declares its set finds the same names.
    const declared = await find(['(0008,0005) CS [ISO_IR 100]'], Buffer.from('Jönsson^Å*', 'latin1'));
    expect([...declared.keys()]).toEqual(['nosetutf8']);
    expect(declared.get('nosetutf8')!.bytes.includes(Buffer.from('Jönsson^Åsa', 'latin1'))).toBe(true);
  });
});
