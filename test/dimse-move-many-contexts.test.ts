// A C-MOVE whose objects need more presentation contexts than one association can propose: PS3.8 §9.3.2.2 numbers
// them with the odd integers 1 to 255, so an A-ASSOCIATE-RQ carries at most 128, and Custos proposes one per SOP
// class and stored transfer syntax, plus the forms it converts to. A study of 130 SOP classes, stored in Explicit or
// Implicit VR Little Endian (260 contexts, each with the other syntax as its converted form), goes on as many
// associations to the destination as its contexts need, every object in its stored syntax, and the final response
// counts them all. Until 7 Dec 2026 the contexts past the 128th were left out and the objects needing them failed
// (0xB000, `no context DEST accepted takes …`).
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { STORAGE_SOP_CLASSES } from '../src/dicom/storage-sop-classes.js';
import { Tags } from '../src/dicom/tags.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { freePort, movescuTo, spawnDcmtk, stopChild } from './support/dcmtk.js';
import { EXPLICIT_LE, IMPLICIT_LE, makeInstance, uid } from './support/fixtures.js';
import {
  ledgerHead,
  ledgerSince,
  postStow,
  startTestServer,
  stopThenCleanUp,
  type TestServer,
} from './support/test-server.js';

const operator = systemPrincipal('test');
const SYNTAXES = [EXPLICIT_LE, IMPLICIT_LE];

describe.each(backends())(
  'C-MOVE of objects needing more than 128 presentation contexts, on %s',
  (backend) => {
    let s: TestServer;
    let work: string;
    const study = uid(1);
    const series = uid(2);
    /** SOP Instance UID → SOP class and transfer syntax it is stored in. */
    const stored = new Map<string, { sopClass: string; ts: string }>();

    beforeAll(async () => {
      // The objects carry the common attributes only, not each class's own: header validation is not tested here.
      s = await startTestServer(backend, { validation: { byChannel: { 'stow-rs': 'lenient' } } });
      work = await mkdtemp(join(tmpdir(), 'custos-many-contexts-'));
      await s.app.aes.add(operator, { title: 'TESTSCU', host: '127.0.0.1', port: 104, user: 'admin' });
      const classes = [...STORAGE_SOP_CLASSES.keys()].slice(0, 130);
      const objects = classes.map((sopClass, i) => {
        const sop = uid(3);
        const ts = SYNTAXES[i % SYNTAXES.length]!;
        stored.set(sop, { sopClass, ts });
        return makeInstance({
          studyUid: study,
          seriesUid: series,
          sopInstanceUid: sop,
          sopClassUid: sopClass,
          transferSyntaxUid: ts,
          instanceNumber: i + 1,
        });
      });
      // Stored, with warnings (0xB007: the objects do not carry each class's own attributes); none failed.
      const r = await postStow(s, objects);
      const body = (await r.json()) as Record<string, { Value?: unknown[] }>;
      expect([200, 202]).toContain(r.status);
      expect(body['00081198']).toBeUndefined();
      expect(body['00081199']?.Value).toHaveLength(130);
    }, 120_000);
    afterAll(async () => {
      expect(await stopThenCleanUp(s, () => rm(work, { recursive: true, force: true }))).toEqual([]);
    });

    it('sends every object, each in its stored syntax, on further associations, and counts them all', async () => {
      const out = await mkdtemp(join(work, 'moved-'));
      const port = await freePort();
      // storescp +xa takes every syntax it knows, -pm every SOP class (dcmtk 3.6.7 knows not all of the standard's).
      const scp = spawnDcmtk('storescp', ['-v', '+xa', '-pm', '-aet', 'MANYDEST', '-od', out, String(port)]);
      let associations = 0;
      scp.stderr!.on(
        'data',
        (d: Buffer) => (associations += d.toString().split('Association Received').length - 1),
      );
      try {
        await s.app.aes.add(operator, { title: 'MANYDEST', host: '127.0.0.1', port });
        await new Promise((r) => setTimeout(r, 300));
        const since = await ledgerHead(s);
        const r = await movescuTo(
          s.dicomPort,
          'TESTSCU',
          'MANYDEST',
          ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${study}`],
          '-d',
        );
        const text = r.stdout + r.stderr;
        const last = (re: RegExp) => [...text.matchAll(re)].at(-1)?.[1]?.trim();
        expect(
          {
            code: r.code,
            status: last(/DIMSE Status\s*: (0x[0-9a-f]+)/gi),
            completed: last(/Completed Suboperations\s*: (\d+)/gi),
            failed: last(/Failed Suboperations\s*: (\d+)/gi),
            comment: last(/\(0000,0902\) LO \[(.*)\]/g),
          },
          text.slice(-3000),
        ).toEqual({ code: 0, status: '0x0000', completed: '130', failed: '0', comment: undefined });
        const received = new Map<string, { sopClass: string; ts: string }>();
        for (const name of await readdir(out)) {
          const p = await parsePart10(await readFile(join(out, name)));
          const text = (tag: number) => {
            const el = p.dataset.get(tag);
            return el?.kind === 'text' ? el.values[0]! : '';
          };
          received.set(text(Tags.SOPInstanceUID), {
            sopClass: text(Tags.SOPClassUID),
            ts: p.transferSyntaxUid,
          });
        }
        expect(received).toEqual(stored);
        // 130 classes in their stored syntaxes and the syntaxes Custos converts them to: more than one association's 128.
        expect(associations).toBeGreaterThan(1);
        const records = await ledgerSince(s, since);
        expect(records.filter((x) => x.action === 'view-pixels' && x.outcome === 'failure')).toEqual([]);
      } finally {
        await stopChild(scp);
      }
    });
  },
);
