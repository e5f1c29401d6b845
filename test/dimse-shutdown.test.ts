// docs/dimse.md, "Robustness": on SIGTERM (the server closed with a grace period) an association finishes the
// operation in progress and answers it before it is aborted; an idle one is aborted at once; no new one is taken.
// Until 6 Dec 2026 every association was cut at once, the C-STORE being received with it.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { openScuAssociation } from '../src/transports/dimse/scu-association.js';
import { backends } from './support/backends.js';
import { dcmtk, freePort, spawnDcmtk, stopChild } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');
const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
const VERIFICATION = '1.2.840.10008.1.1';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

describe.each(backends())('DIMSE associations when the server shuts down, on %s', (backend) => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.stop();
    s = undefined;
  });

  const associate = (port: number, abstractSyntax: string) =>
    openScuAssociation({
      host: '127.0.0.1',
      port,
      calledAe: 'CUSTOS',
      callingAe: 'TESTSCU',
      timeoutMs: 10_000,
      contexts: [{ abstractSyntax, transferSyntaxes: [EXPLICIT_LE] }],
    });
  const indexed = async (sop: string) =>
    (
      await s!.app.index.db
        .selectFrom('instances')
        .select('sop_instance_uid')
        .where('sop_instance_uid', '=', sop)
        .execute()
    ).length;

  it('finishes and answers the C-STORE being received, then aborts; an idle association ends at once; no new one is taken', async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(admin, { title: 'TESTSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    const port = s.dicomPort!;
    const idle = await associate(port, VERIFICATION);
    const busy = await associate(port, CT_IMAGE);
    const idleClosed = new Promise<void>((r) => idle.conn.socket.once('close', () => r()));
    const busyClosed = new Promise<void>((r) => busy.conn.socket.once('close', () => r()));

    const sop = uid(3);
    const file = makeInstance({
      studyUid: uid(1),
      seriesUid: uid(2),
      sopInstanceUid: sop,
      rows: 256,
      columns: 256,
    });
    const dataSet = file.subarray((await parsePart10(file)).datasetStart);
    // The data set goes in two halves: the server is told to stop between them.
    let sendRest!: () => void;
    const rest = new Promise<void>((r) => (sendRest = r));
    let firstHalfSent!: () => void;
    const halfway = new Promise<void>((r) => (firstHalfSent = r));
    async function* body() {
      yield dataSet.subarray(0, dataSet.length >> 1);
      firstHalfSent();
      await rest;
      yield dataSet.subarray(dataSet.length >> 1);
    }
    const messageId = busy.conn.messageId();
    const response = busy.conn.awaitResponse(messageId);
    const sent = busy.conn.send(
      busy.context(CT_IMAGE)!.id,
      {
        affectedSopClassUid: CT_IMAGE,
        commandField: 0x0001,
        messageId,
        priority: 0,
        commandDataSetType: 0,
        affectedSopInstanceUid: sop,
      },
      body(),
    );
    await halfway;
    await new Promise((r) => setTimeout(r, 200));

    const shutDown = s.shutDown(20_000);
    // The idle association is aborted at once; nobody new gets in.
    await idleClosed;
    await expect(associate(port, VERIFICATION)).rejects.toThrow(/ECONNREFUSED/);
    // The C-STORE in flight is read to its end, stored and answered; then that association ends too.
    sendRest();
    await sent;
    expect((await response).cmd.status).toBe(0);
    await busyClosed;
    await shutDown;
    expect(await indexed(sop)).toBe(1);
    expect(s.unexpected).toEqual([]);
  });

  it('stops a C-MOVE after the sub-operation in progress and answers it with the rest failed', async () => {
    s = await startTestServer(backend);
    await s.app.aes.add(admin, { title: 'TESTSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    const studyUid = uid(11);
    const sops = Array.from({ length: 6 }, (_, i) => uid(20 + i));
    const res = await postStow(
      s,
      sops.map((sop, i) =>
        makeInstance({ studyUid, seriesUid: uid(12), sopInstanceUid: sop, instanceNumber: i + 1 }),
      ),
    );
    expect(res.status).toBe(200);
    const work = await mkdtemp(join(tmpdir(), 'custos-shutdown-'));
    const destPort = await freePort();
    // A destination that takes a second over each object: the shutdown comes during the first.
    const scp = spawnDcmtk('storescp', [
      '--sleep-after',
      '1',
      '-aet',
      'SLOWDEST',
      '-od',
      work,
      String(destPort),
    ]);
    try {
      await s.app.aes.add(admin, { title: 'SLOWDEST', host: '127.0.0.1', port: destPort });
      await new Promise((r) => setTimeout(r, 300));
      const move = dcmtk('movescu', [
        '-d',
        '-aet',
        'TESTSCU',
        '-aec',
        'CUSTOS',
        '-S',
        '-aem',
        'SLOWDEST',
        '127.0.0.1',
        String(s.dicomPort),
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${studyUid}`,
      ]);
      for (let i = 0; i < 100 && (await readdir(work)).length === 0; i++)
        await new Promise((r) => setTimeout(r, 50));
      await s.shutDown(20_000);
      const r = await move;
      // The final response came before the association ended: some sent, the rest failed with the reason.
      expect(r.stderr).toMatch(/Move response with warning status|0xb000/i);
      expect(r.stderr).toMatch(/the archive is shutting down: [12] of 6 sent/);
      expect((await readdir(work)).length).toBeLessThan(6);
      expect(s.unexpected).toEqual([]);
    } finally {
      await stopChild(scp);
      await rm(work, { recursive: true, force: true });
    }
  });
});
