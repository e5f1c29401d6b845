// A Specific Character Set (0008,0005) misspelt in case or separators ('ISO_IR100', 'iso_ir 100', IANA's 'UTF-8'
// for ISO_IR 192) is read in the set it names, with a warning (0xB000), at ingest and in a C-FIND identifier; a term
// Custos cannot place at all leaves characters outside ASCII unreadable, so a C-FIND key holding them is refused
// (0xA900, naming the term) rather than matched as a guess. Until 7 Dec 2026 every unknown term was read as ISO 8859-1:
// a 'UTF-8' name was stored and served as 'JÃ©rÃ´me', and findscu asking in 'UTF-8' or 'FOO' was told Success with
// no match.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk, storescuTo } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const t = (g: number, e: number) => ((g << 16) | e) >>> 0;

describe.each(backends())('misspelt and unknown Specific Character Sets, on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  const prefix = `MS-${uid(1)}`;
  const studyUid = uid(2);
  let stored: { code: number | null; stderr: string };

  beforeAll(async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(systemPrincipal('test'), {
      title: 'MSSCU',
      host: '127.0.0.1',
      port: 104,
      user: 'admin',
    });
    dir = await mkdtemp(join(tmpdir(), 'custos-charset-'));
    const file = join(dir, 'utf-8.dcm');
    await writeFile(
      file,
      makeInstance({
        studyUid,
        seriesUid: uid(3),
        sopInstanceUid: uid(4),
        patientId: `${prefix}-1`,
        extra: [
          { tag: t(0x0008, 0x0005), vr: 'CS', value: 'UTF-8' },
          { tag: t(0x0010, 0x0010), vr: 'PN', value: Buffer.from('Buc^Jérôme', 'utf8') },
        ],
      }),
    );
    stored = await storescuTo(s.dicomPort, 'MSSCU', [file], '-d');
  }, 60_000);
  afterAll(async () => {
    expect(await stopThenCleanUp(s, () => rm(dir, { recursive: true, force: true }))).toEqual([]);
  });

  it("stores a name sent as 'UTF-8' in UTF-8", async () => {
    expect(stored.code, stored.stderr).toBe(0);
    // Stored with a warning (0xB007: validation finds '-', no CS character, in the term), not refused.
    expect(stored.stderr).toContain('DIMSE Status                  : 0xb007');
    const res = await fetch(`${s.dicomweb}/studies/${studyUid}/metadata`, {
      headers: { Authorization: `Bearer ${s.token}` },
    });
    const [meta] = (await res.json()) as Record<string, { Value: { Alphabetic: string }[] }>[];
    expect(meta!['00100010']!.Value[0]!.Alphabetic).toBe('Buc^Jérôme');
  });

  /** findscu of PatientName in the identifier `query` (written by dump2dcm from Latin-1 or UTF-8 bytes). */
  const find = async (charset: string, name: Buffer) => {
    const dump = join(dir, 'query.dump');
    const query = join(dir, 'query.dcm');
    await writeFile(
      dump,
      Buffer.concat([
        Buffer.from(`(0008,0005) CS [${charset}]\n(0008,0052) CS [STUDY]\n(0010,0020) LO [${prefix}-*]\n`),
        Buffer.from('(0010,0010) PN ['),
        name,
        Buffer.from(']\n'),
      ]),
    );
    execFileSync('dump2dcm', [dump, query]);
    const r = await dcmtk('findscu', [
      '-v',
      '-S',
      '-aet',
      'MSSCU',
      '-aec',
      'CUSTOS',
      '127.0.0.1',
      String(s.dicomPort),
      query,
    ]);
    return {
      ...r,
      answers: [...r.stderr.matchAll(/\(0010,0020\) LO \[([^\]]*)\]/g)]
        .map((m) => m[1]!.trim())
        // The request identifier's own Patient ID, which findscu -v prints too.
        .filter((id) => !id.endsWith('*')),
    };
  };

  it('reads a C-FIND key in a misspelt term in the set it names', async () => {
    expect((await find('UTF-8', Buffer.from('Buc^Jérôme', 'utf8'))).answers).toEqual([`${prefix}-1`]);
    expect((await find('ISO_IR100', Buffer.from('Buc^Jérôme', 'latin1'))).answers).toEqual([`${prefix}-1`]);
    expect((await find('iso_ir 192', Buffer.from('Buc^J*', 'utf8'))).answers).toEqual([`${prefix}-1`]);
  });

  it('refuses a C-FIND key outside ASCII in a term it cannot place, and answers an ASCII one', async () => {
    const refused = await find('FOO', Buffer.from('Buc^Jérôme', 'utf8'));
    expect(refused.answers).toEqual([]);
    expect(refused.stderr).toContain('Received Final Find Response (Error: DataSetDoesNotMatchSOPClass)');
    expect((await find('FOO', Buffer.from('Buc^J*'))).answers).toEqual([`${prefix}-1`]);
  });
});
