import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { getString } from '../src/dicom/dataset.js';
import { Tags } from '../src/dicom/tags.js';
import { parseHl7, value } from '../src/domain/hl7/hl7-message.js';
import {
  adtMessage,
  type ExamplePatient,
  changeIdMessage,
  mergeMessage,
  omiMessage,
  ormMessage,
} from '../src/domain/hl7/hl7-examples.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { mllpFrame } from '../src/transports/hl7/mllp-decoder.js';
import { backends } from './support/backends.js';
import { CYRILLIC_PROCEDURE_CODE, makeInstance, stowBody, uid } from './support/fixtures.js';
import { collect, multipartParts } from './support/http.js';
import { MllpClient } from './support/mllp-client.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { mllpSend } from './support/mllp-send.js';

type Json = Record<string, { vr: string; Value?: unknown[] }>;

const SENDERS = ['ADT1^GOOD HEALTH HOSPITAL', 'REGADT^MCM', 'RIS^HOSP'];
const MAX_MESSAGE_BYTES = 16 * 1024;

/** The MSA and ERR of an ACK. */
function ackOf(text: string) {
  const ack = parseHl7(text);
  const err = ack.segment('ERR');
  return {
    code: value(ack.segment('MSA'), 1),
    controlId: value(ack.segment('MSA'), 2),
    errorCode: value(err, 3, 1),
    errorLocation: [value(err, 2, 1), value(err, 2, 3)].filter(Boolean).join('-'),
    severity: value(err, 4),
    userMessage: value(err, 8),
    receivingApplication: ack.receivingApplication,
  };
}

const pnText = (json: Json, tag: string) => {
  const v = json[tag]?.Value?.[0];
  return typeof v === 'object' && v !== null ? (v as { Alphabetic?: string }).Alphabetic : v;
};

/** A self-signed server certificate for 127.0.0.1, made with the openssl command-line tool. */
async function makeCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'hl7-cert.pem');
  const key = join(dir, 'hl7-key.pem');
  execFileSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=custos-hl7-test',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** A CA and a client certificate it signed, for MLLP/TLS with client certificates. */
async function makeClientCertificate(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  const cert = join(dir, 'client.pem');
  const key = join(dir, 'client-key.pem');
  const csr = join(dir, 'client.csr');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  execFileSync('openssl', [
    'req',
    '-x509',
    ...ec,
    '-days',
    '2',
    '-subj',
    '/CN=custos-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    caKey,
    '-out',
    ca,
  ]);
  execFileSync('openssl', ['req', ...ec, '-subj', '/CN=ris.hosp', '-keyout', key, '-out', csr]);
  execFileSync('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    cert,
  ]);
  return { ca, cert, key };
}

describe.each(backends())('MLLP listener limits on %s', (backend) => {
  let s: TestServer;
  let dir: string;
  let serverCert: Buffer;
  let client: { ca: string; cert: string; key: string };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custos-hl7-mtls-'));
    const server = await makeCertificate(dir);
    serverCert = await readFile(server.cert);
    client = await makeClientCertificate(dir);
    s = await startTestServer(backend, {
      hl7: {
        port: 0,
        senders: SENDERS,
        idleTimeoutSeconds: 1,
        tls: { port: 0, ...server, ca: client.ca, requireClientCert: true },
      },
    });
  });

  afterAll(async () => {
    await s?.stop();
    await rm(dir, { recursive: true, force: true });
    expect(s.unexpected).toEqual([]);
  });

  it('keeps a connection open past hl7.idleTimeoutSeconds while its message is being applied, and answers it', async () => {
    // The ledger's write lock, held here, keeps the message waiting longer than the idle timeout.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const lockTaken = new Promise<void>((r) => (locked = r));
    const holder = s.app.index.db.transaction().execute(async (trx) => {
      await s.app.ledger.lockIn(trx);
      await sql`select 1`.execute(trx);
      locked();
      await released;
    });
    await lockTaken;
    const c = await MllpClient.connect(s.hl7Port!);
    try {
      c.write(mllpFrame(adtMessage('A08', 'SLOW-1', { id: 'SLOW-1', family: 'SLOW', given: 'LY' })));
      // Past the 1 s idle timeout, the message still waiting for the lock: the sender is waiting for its ACK.
      await new Promise((r) => setTimeout(r, 2500));
      release();
      await holder;
      expect(ackOf(await c.next())).toMatchObject({ code: 'AA', controlId: 'SLOW-1' });
    } finally {
      release();
      await c.close();
    }
  });

  it('closes a connection that stays silent past hl7.idleTimeoutSeconds, and keeps listening', async () => {
    const idle = await MllpClient.connect(s.hl7Port!);
    for (let i = 0; i < 50 && !idle.isClosed; i++) await new Promise((r) => setTimeout(r, 100));
    expect(idle.isClosed).toBe(true);
    const next = await MllpClient.connect(s.hl7Port!);
    try {
      const ack = ackOf(
        await next.send(adtMessage('A08', 'AFTER-IDLE', { id: 'IDLE-1', family: 'A', given: 'B' })),
      );
      expect(ack.code).toBe('AA');
    } finally {
      await next.close();
    }
  });

  it('closes a connection whose frame, or run of bytes outside one, trickles in past hl7.idleTimeoutSeconds', async () => {
    // Until 8 Dec 2026 each byte started the idle time again: a peer sending one now and then was never closed.
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    /** Writes one byte every 300 ms (well inside the 1 s idle timeout) until the connection closes, at most 6 s. */
    const trickle = async (c: MllpClient, byte: string) => {
      const started = Date.now();
      while (!c.isClosed && Date.now() - started < 6000) {
        c.write(Buffer.from(byte));
        await sleep(300);
      }
      return Date.now() - started;
    };
    const failures = async () =>
      s.app.auditStore.search({ action: ['hl7-message'], outcome: 'failure', limit: 10 });

    const slowFrame = await MllpClient.connect(s.hl7Port!);
    const header = adtMessage('A01', 'TRICKLE-1', { id: 'TRICKLE-1', family: 'A', given: 'B' });
    slowFrame.write(Buffer.concat([Buffer.of(0x0b), Buffer.from(header.slice(0, header.indexOf('\r') + 1))]));
    expect(await trickle(slowFrame, 'x')).toBeLessThan(6000);
    expect(slowFrame.isClosed).toBe(true);
    const recorded = async () => (await failures()).find((r) => r.detail?.controlId === 'TRICKLE-1');
    for (let i = 0; i < 50 && !(await recorded()); i++) await sleep(50);
    expect((await recorded())?.detail).toMatchObject({
      messageType: 'ADT^A01',
      reason: expect.stringMatching(
        /^the frame was not finished within 1 s of its start \(hl7\.idleTimeoutSeconds\): the connection was closed \d+ byte\(s\) into it, before its end block \(0x1C 0x0D\), and nothing of it was applied$/,
      ),
    });

    const slowJunk = await MllpClient.connect(s.hl7Port!);
    slowJunk.write(Buffer.from('junk'));
    expect(ackOf(await slowJunk.next())).toMatchObject({ code: 'AR', errorCode: '100' });
    expect(await trickle(slowJunk, 'j')).toBeLessThan(6000);
    expect(slowJunk.isClosed).toBe(true);
    const closedOutside = async () =>
      (await failures()).find((r) => /over more than 1 s/.test(String(r.detail?.reason)));
    for (let i = 0; i < 50 && !(await closedOutside()); i++) await sleep(50);
    expect((await closedOutside())?.detail).toMatchObject({
      hl7Error: 100,
      reason: expect.stringMatching(
        /^\d+ byte\(s\) arrived outside an MLLP frame over more than 1 s \(hl7\.idleTimeoutSeconds\) with no frame after them: the connection was closed$/,
      ),
    });

    // Frames sent whole, one after another for longer than the timeout, are each a run of their own.
    const steady = await MllpClient.connect(s.hl7Port!);
    try {
      for (let i = 1; i <= 4; i++) {
        expect(
          ackOf(
            await steady.send(adtMessage('A08', `STEADY-${i}`, { id: 'STEADY-1', family: 'A', given: 'B' })),
          ),
        ).toMatchObject({ code: 'AA' });
        steady.write(Buffer.from('\r\n'));
        await sleep(400);
      }
      expect(steady.isClosed).toBe(false);
    } finally {
      await steady.close();
    }
  });

  it('requires a client certificate from hl7.tls.ca when requireClientCert is set, and records its subject', async () => {
    const message = adtMessage('A08', 'MTLS-1', { id: 'MTLS-1', family: 'A', given: 'B' });
    const withoutCert = async () => {
      const c = await MllpClient.connect(s.hl7TlsPort!, { ca: serverCert });
      try {
        return await c.send(message);
      } finally {
        await c.close();
      }
    };
    await expect(withoutCert()).rejects.toThrow();
    const c = await MllpClient.connect(s.hl7TlsPort!, {
      ca: serverCert,
      cert: await readFile(client.cert),
      key: await readFile(client.key),
    });
    try {
      expect(ackOf(await c.send(message))).toMatchObject({ code: 'AA', controlId: 'MTLS-1' });
    } finally {
      await c.close();
    }
    const [record] = await s.app.auditStore.search({
      action: ['hl7-patient-update'],
      patientId: 'MTLS-1',
      limit: 1,
    });
    expect(record!.actor.via).toBe('tls-cert:ris.hosp');
  });
});

describe.each(backends())('HL7 v2 over MLLP on %s', (backend) => {
  let s: TestServer;
  let certDir: string;
  let certPem: Buffer;
  let client: MllpClient;
  const auth = () => ({ Authorization: `Bearer ${s.token}` });
  const studyOld = uid(1);
  const studyNew = uid(2);
  const series = [uid(3), uid(4)];
  const sops = [uid(5), uid(6)];
  const run = uid(7).slice(-8);
  const oldId = `OLD-${run}`;
  const newId = `NEW-${run}`;
  const stored = new Map<string, Buffer>();
  let control = 0;
  const nextControl = () => `MSG${run}-${++control}`;

  const qido = async (path: string) => {
    const res = await fetch(`${s.dicomweb}${path}`, {
      headers: { ...auth(), Accept: 'application/dicom+json' },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Json[];
  };

  beforeAll(async () => {
    certDir = await mkdtemp(join(tmpdir(), 'custos-hl7-cert-'));
    const { cert, key } = await makeCertificate(certDir);
    certPem = await readFile(cert);
    s = await startTestServer(backend, {
      hl7: {
        port: 0,
        senders: SENDERS,
        maxMessageBytes: MAX_MESSAGE_BYTES,
        tls: { port: 0, cert, key, requireClientCert: false },
      },
    });
    const objects = [
      makeInstance({
        studyUid: studyOld,
        seriesUid: series[0]!,
        sopInstanceUid: sops[0]!,
        patientId: oldId,
        patientName: 'Duplicate^Adam',
        birthDate: '19610615',
        sex: 'M',
      }),
      makeInstance({
        studyUid: studyNew,
        seriesUid: series[1]!,
        sopInstanceUid: sops[1]!,
        patientId: newId,
        patientName: 'Everyman^Adam',
        birthDate: '19610615',
        sex: 'M',
      }),
    ];
    objects.forEach((o, i) => stored.set(sops[i]!, o));
    const { body, contentType } = stowBody(objects.map((bytes) => ({ bytes })));
    const res = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    client = await MllpClient.connect(s.hl7Port!);
  });

  afterAll(async () => {
    await client?.close();
    await s?.stop();
    await rm(certDir, { recursive: true, force: true });
    expect(s.unexpected).toEqual([]);
  });

  it('applies ADT^A01 then A08 to the patient index, and QIDO shows the current demographics', async () => {
    const a01Control = nextControl();
    const a01 = ackOf(
      await client.send(
        adtMessage('A01', a01Control, { id: newId, family: 'EVERYMAN', given: 'ADAM', middle: 'A' }),
      ),
    );
    expect(a01).toMatchObject({ code: 'AA', controlId: a01Control, receivingApplication: 'ADT1' });
    let [hit] = await qido(`/studies?PatientID=${newId}`);
    expect(pnText(hit!, '00100010')).toBe('EVERYMAN^ADAM^A^^III');

    const a08 = ackOf(
      await client.send(
        adtMessage('A08', nextControl(), {
          id: newId,
          family: 'EVERYMAN-SMITH',
          given: 'ADAM',
          birth: '19610616',
          sex: 'O',
        }),
      ),
    );
    expect(a08.code).toBe('AA');
    [hit] = await qido(`/studies?PatientID=${newId}&includefield=00100030,00100040`);
    expect(pnText(hit!, '00100010')).toBe('EVERYMAN-SMITH^ADAM^^^III');
    expect(hit!['00100030']?.Value).toEqual(['19610616']);
    expect(hit!['00100040']?.Value).toEqual(['O']);
    // QIDO matches on the index too.
    expect(await qido(`/studies?PatientName=EVERYMAN-SMITH*`)).toHaveLength(1);

    const records = await s.app.auditStore.search({
      action: ['hl7-patient-update'],
      patientId: newId,
      limit: 10,
    });
    expect(records).toHaveLength(2);
    expect(records[0]).toMatchObject({
      outcome: 'success',
      channel: 'hl7',
      actor: { name: 'hl7:ADT1^GOOD HEALTH HOSPITAL' },
    });
    expect(records[0]!.detail).toMatchObject({ event: 'A08', after: { birth_date: '19610616', sex: 'O' } });
  });

  it('serves a name update in UTF-8 when the header cannot hold it: items with their own character set, none at all', async () => {
    // Until 6 Dec 2026 an item in ISO_IR 144 made the rewritten header a 500 (dicom.not-encodable), and a header
    // without Specific Character Set got the new name in Latin-1 bytes, declared nowhere.
    const t = (g: number, e: number) => ((g << 16) | e) >>> 0;
    const itemId = `ITEM-${run}`;
    const plainId = `PLAIN-${run}`;
    const withItem = { studyUid: uid(20), seriesUid: uid(21), sopInstanceUid: uid(22) };
    const plain = { studyUid: uid(23), seriesUid: uid(24), sopInstanceUid: uid(25) };
    const objects = [
      makeInstance({
        ...withItem,
        patientId: itemId,
        patientName: 'Petrov^Petr',
        extra: [CYRILLIC_PROCEDURE_CODE],
      }),
      makeInstance({
        ...plain,
        patientId: plainId,
        patientName: 'MULLER^JURGEN',
        omit: [Tags.SpecificCharacterSet],
      }),
    ];
    const { body, contentType } = stowBody(objects.map((bytes) => ({ bytes })));
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    expect(stow.status, await stow.clone().text()).toBe(200);
    for (const [id, family, given] of [
      [itemId, 'PETROV', 'PETR IVANOVICH'],
      [plainId, 'Müller', 'Jürgen'],
    ] as const)
      expect(ackOf(await client.send(adtMessage('A08', nextControl(), { id, family, given }))).code).toBe(
        'AA',
      );

    const served = async (o: typeof plain) => {
      const res = await fetch(
        `${s.dicomweb}/studies/${o.studyUid}/series/${o.seriesUid}/instances/${o.sopInstanceUid}`,
        {
          headers: { ...auth(), Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
        },
      );
      expect(res.status, await res.clone().text()).toBe(200);
      const [part] = await multipartParts(res);
      return part!.body;
    };
    const itemBytes = await served(withItem);
    const item = await parsePart10(itemBytes);
    expect(getString(item.dataset, Tags.SpecificCharacterSet)).toBe('ISO_IR 192');
    expect(getString(item.dataset, Tags.PatientName)).toBe('PETROV^PETR IVANOVICH^^^III');
    const seq = item.dataset.get(t(0x0008, 0x1032));
    expect(seq?.kind).toBe('sequence');
    const [first] = seq?.kind === 'sequence' ? seq.items : [];
    expect(getString(first!, Tags.SpecificCharacterSet)).toBe('ISO_IR 192');
    expect(getString(first!, t(0x0008, 0x0104))).toBe('Рентген');
    expect(itemBytes.includes(Buffer.from('Рентген', 'utf8'))).toBe(true);

    const plainBytes = await served(plain);
    const named = await parsePart10(plainBytes);
    expect(getString(named.dataset, Tags.SpecificCharacterSet)).toBe('ISO_IR 192');
    expect(getString(named.dataset, Tags.PatientName)).toBe('Müller^Jürgen^^^III');
    expect(plainBytes.includes(Buffer.from('Müller^Jürgen', 'utf8'))).toBe(true);
  });

  it('merges with ADT^A40: the merged patient’s studies move, and QIDO, WADO-RS metadata and served bytes follow', async () => {
    const before = await s.app.index.db
      .selectFrom('instances')
      .select(['sha256'])
      .where('sop_instance_uid', '=', sops[0]!)
      .executeTakeFirstOrThrow();
    // The surviving patient's record in the index, which the merged study's headers follow, with a birth date that
    // differs from the one in the merged patient's images.
    const a08 = adtMessage('A08', nextControl(), {
      id: newId,
      family: 'EVERYMAN-SMITH',
      given: 'ADAM',
      birth: '19610616',
    });
    expect(ackOf(await client.send(a08)).code).toBe('AA');
    const ack = ackOf(
      await client.send(
        mergeMessage(nextControl(), { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' }, oldId),
      ),
    );
    expect(ack.code).toBe('AA');

    const found = await qido(`/studies?PatientID=${newId}`);
    expect(found.map((r) => r['0020000D']?.Value?.[0]).sort()).toEqual([studyOld, studyNew].sort());
    expect(await qido(`/studies?PatientID=${oldId}`)).toEqual([]);
    const moved = found.find((r) => r['0020000D']?.Value?.[0] === studyOld)!;
    expect(moved['00100020']?.Value).toEqual([newId]);
    expect(pnText(moved, '00100010')).toBe('EVERYMAN-SMITH^ADAM');

    const meta = await fetch(`${s.dicomweb}/studies/${studyOld}/metadata`, {
      headers: { ...auth(), Accept: 'application/dicom+json' },
    });
    expect(meta.status).toBe(200);
    const [instance] = (await meta.json()) as Json[];
    expect(instance!['00100020']?.Value).toEqual([newId]);
    expect(pnText(instance!, '00100010')).toBe('EVERYMAN-SMITH^ADAM');
    expect(instance!['00100030']?.Value).toEqual(['19610616']);

    // WADO-RS instance bytes: header corrected, same transfer syntax, pixel data untouched.
    const res = await fetch(`${s.dicomweb}/studies/${studyOld}`, {
      headers: { ...auth(), Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    expect(res.status).toBe(200);
    const [part] = await multipartParts(res);
    const served = await parsePart10(part!.body);
    const original = await parsePart10(stored.get(sops[0]!)!);
    expect(getString(served.dataset, Tags.PatientID)).toBe(newId);
    expect(getString(served.dataset, Tags.PatientName)).toBe('EVERYMAN-SMITH^ADAM');
    expect(getString(served.dataset, Tags.PatientBirthDate)).toBe('19610616');
    expect(served.transferSyntaxUid).toBe(original.transferSyntaxUid);
    expect(getString(served.dataset, Tags.SOPInstanceUID)).toBe(sops[0]);
    const pixels = (bytes: Buffer, p: typeof served) =>
      bytes.subarray(p.pixelData!.offset, p.pixelData!.offset + p.pixelData!.length);
    expect(pixels(part!.body, served).equals(pixels(stored.get(sops[0]!)!, original))).toBe(true);

    // WADO-URI serves the same corrected object.
    const uri = await fetch(
      `${s.url}/wado?requestType=WADO&studyUID=${studyOld}&seriesUID=${series[0]}&objectUID=${sops[0]}&contentType=application/dicom`,
      { headers: auth() },
    );
    expect(uri.status).toBe(200);
    const uriBytes = Buffer.from(await uri.arrayBuffer());
    expect(uriBytes.equals(part!.body)).toBe(true);
    expect(Number(uri.headers.get('content-length'))).toBe(uriBytes.length);

    // The stored object is unchanged: same checksum, same bytes.
    const after = await s.app.index.db
      .selectFrom('instances')
      .select(['sha256'])
      .where('sop_instance_uid', '=', sops[0]!)
      .executeTakeFirstOrThrow();
    expect(after.sha256).toBe(before.sha256);
    const [ref] = await s.app.retrieve.open(
      systemPrincipal('test'),
      { studyUid: studyOld },
      'view-pixels',
      'test',
    );
    // The stream DIMSE C-GET/C-MOVE send is the same corrected object (one header rewrite for every path);
    // reading it verifies the stored bytes against that unchanged SHA-256.
    expect((await collect(s.app.retrieve.stream(ref!))).equals(part!.body)).toBe(true);

    const [record] = await s.app.auditStore.search({
      action: ['hl7-patient-merge'],
      patientId: newId,
      limit: 1,
    });
    expect(record).toMatchObject({ outcome: 'success', objects: { studies: [studyOld], count: 1 } });
    expect(record!.detail).toMatchObject({ merged: { patientId: oldId }, surviving: { patientId: newId } });

    // An image of the merged patient that arrives late, still under the old PatientID, joins its study under the
    // surviving patient.
    const late = makeInstance({
      studyUid: studyOld,
      seriesUid: series[0]!,
      sopInstanceUid: uid(14),
      patientId: oldId,
      patientName: 'Duplicate^Adam',
      instanceNumber: 2,
    });
    const { body, contentType } = stowBody([{ bytes: late }]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    // Stored, with a warning: the header's patient demographics disagree with the patient index (which the
    // served headers follow).
    expect(stow.status, await stow.clone().text()).toBe(202);
    expect(stow.headers.get('warning')).toMatch(
      /\(0010,00(10|40)\) Patient(Name|Sex) differs from the patient index/,
    );
    const [joined] = await qido(`/studies?StudyInstanceUID=${studyOld}`);
    expect(joined!['00100020']?.Value).toEqual([newId]);
    expect(joined!['00201208']?.Value).toEqual([2]);
    expect(await qido(`/studies?PatientID=${oldId}`)).toEqual([]);
  });

  it('files images that arrive after the ADT under the patient the feed created, with its demographics', async () => {
    const first = `FIRST-${run}`;
    const ack = ackOf(
      await client.send(
        adtMessage('A04', nextControl(), { id: first, family: 'FEED', given: 'FIRST', sex: 'F' }),
      ),
    );
    expect(ack.code).toBe('AA');
    const study = uid(15);
    // The modality knows the PatientID but not its assigning authority, and has the name wrong.
    const { body, contentType } = stowBody([
      {
        bytes: makeInstance({
          studyUid: study,
          seriesUid: uid(16),
          sopInstanceUid: uid(17),
          patientId: first,
          patientName: 'Wrong^Name',
          sex: 'M',
        }),
      },
    ]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    // Stored, with a warning: the header's patient demographics disagree with the patient index (which the
    // served headers follow).
    expect(stow.status, await stow.clone().text()).toBe(202);
    expect(stow.headers.get('warning')).toMatch(
      /\(0010,00(10|40)\) Patient(Name|Sex) differs from the patient index/,
    );
    const [hit] = await qido(`/studies?PatientID=${first}&includefield=00100040`);
    expect(pnText(hit!, '00100010')).toBe('FEED^FIRST^^^III');
    expect(hit!['00100040']?.Value).toEqual(['F']);
    const rows = await s.app.index.db
      .selectFrom('patients')
      .select('issuer')
      .where('patient_id', '=', first)
      .execute();
    expect(rows).toEqual([{ issuer: 'GOOD HEALTH HOSPITAL' }]);
  });

  it('changes a patient identifier with ADT^A47 and refuses a change onto an existing patient', async () => {
    const renamed = `REN-${run}`;
    const studiesOf = async (id: string) =>
      (await qido(`/studies?PatientID=${id}`)).map((r) => r['0020000D']?.Value?.[0]).sort();
    // The patient's studies (its own, and the merged patient's once the A40 test has run): all of them follow.
    const studies = await studiesOf(newId);
    expect(studies).toContain(studyNew);
    const ack = ackOf(
      await client.send(
        changeIdMessage(nextControl(), { id: renamed, family: 'EVERYMAN-SMITH', given: 'ADAM' }, newId),
      ),
    );
    expect(ack.code).toBe('AA');
    expect(await studiesOf(renamed)).toEqual(studies);
    expect(await qido(`/studies?PatientID=${newId}`)).toEqual([]);
    // Back again, so the other tests find the patient where they expect it.
    expect(
      ackOf(
        await client.send(
          changeIdMessage(nextControl(), { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' }, renamed),
        ),
      ).code,
    ).toBe('AA');
    const unknown = ackOf(
      await client.send(
        changeIdMessage(nextControl(), { id: `X-${run}`, family: 'A', given: 'B' }, `NOBODY-${run}`),
      ),
    );
    expect(unknown).toMatchObject({ code: 'AE', errorCode: '204', errorLocation: 'MRG-1' });
    expect(unknown.userMessage).toMatch(/not in the patient index/);
  });

  it('records ORM^O01 and OMI^O23 orders with their care relationships', async () => {
    const order = {
      placer: `PL-${run}`,
      filler: `FL-${run}`,
      accession: `ACC-${run}`,
      procedure: ['71020', 'CHEST PA AND LATERAL'] as [string, string],
      ordering: ['4567', 'ORDERING', 'OTTO'] as [string, string, string],
      referring: ['7890', 'REFER', 'RITA'] as [string, string, string],
      service: 'CAR',
    };
    const adam = { id: newId, family: 'EVERYMAN', given: 'ADAM' };
    const orm = ackOf(await client.send(ormMessage(nextControl(), adam, order)));
    expect(orm.code).toBe('AA');
    const omi = ackOf(
      await client.send(
        omiMessage(
          nextControl(),
          { id: `OMI-${run}`, family: 'DOE', given: 'JOHN' },
          {
            placer: `PL2-${run}`,
            filler: `FL2-${run}`,
            accession: `ACC2-${run}`,
            procedure: ['CTHEAD', 'CT HEAD W/O CONTRAST'],
            ordering: ['9012', 'ORDER', 'OSCAR'],
            referring: ['5678', 'REFER', 'RITA'],
            studyUid: studyNew,
            modality: 'CT',
          },
        ),
      ),
    );
    expect(omi.code).toBe('AA');
    const orders = await s.app.index.db
      .selectFrom('orders as o')
      .innerJoin('patients as p', 'p.pk', 'o.patient_pk')
      .select([
        'o.accession_number',
        'o.placer_order_number',
        'o.filler_order_number',
        'o.ordering_physician_name',
        'o.referring_physician_name',
        'o.department',
        'o.procedure_code',
        'o.procedure_text',
        'o.status',
        'o.study_instance_uid',
        'o.received_at',
        'p.patient_id',
      ])
      .where('o.accession_number', 'in', [`ACC-${run}`, `ACC2-${run}`])
      .orderBy('o.accession_number')
      .execute();
    expect(orders).toMatchObject([
      {
        accession_number: `ACC-${run}`,
        placer_order_number: `PL-${run}`,
        filler_order_number: `FL-${run}`,
        ordering_physician_name: 'ORDERING^OTTO',
        referring_physician_name: 'REFER^RITA',
        department: 'CAR',
        procedure_code: '71020',
        procedure_text: 'CHEST PA AND LATERAL',
        status: 'scheduled',
        patient_id: newId,
      },
      {
        accession_number: `ACC2-${run}`,
        ordering_physician_name: 'ORDER^OSCAR',
        department: 'RAD',
        procedure_code: 'CTHEAD',
        study_instance_uid: studyNew,
        patient_id: `OMI-${run}`,
      },
    ]);
    expect(orders[0]!.received_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const relationships = await s.app.index.db
      .selectFrom('care_relationships as c')
      .innerJoin('patients as p', 'p.pk', 'c.patient_pk')
      .select(['c.physician_id', 'c.relationship', 'p.patient_id'])
      .where('p.patient_id', 'in', [newId, `OMI-${run}`])
      .orderBy('c.physician_id')
      .execute();
    expect(relationships).toEqual([
      { physician_id: '4567', relationship: 'ordering', patient_id: newId },
      { physician_id: '5678', relationship: 'referring', patient_id: `OMI-${run}` },
      { physician_id: '7890', relationship: 'referring', patient_id: newId },
      { physician_id: '9012', relationship: 'ordering', patient_id: `OMI-${run}` },
    ]);
    // A cancel for the same order updates it.
    const cancel = ormMessage(nextControl(), adam, order).replace('ORC|NW|', 'ORC|CA|');
    expect(ackOf(await client.send(cancel)).code).toBe('AA');
    const cancelled = await s.app.index.db
      .selectFrom('orders')
      .select('status')
      .where('placer_order_number', '=', `PL-${run}`)
      .executeTakeFirstOrThrow();
    expect(cancelled.status).toBe('cancelled');
    const records = await s.app.auditStore.search({ action: ['hl7-order'], limit: 10 });
    expect(records.length).toBeGreaterThanOrEqual(3);
    expect(records.find((r) => r.detail?.accessionNumber === `ACC2-${run}`)).toMatchObject({
      patientId: `OMI-${run}`,
      studyUid: studyNew,
    });
  });

  it("lets an order's ordering physician see the patient's studies (care relationship) and no one else", async () => {
    const operator = {
      kind: 'system' as const,
      id: 'x' as never,
      name: 'system:test',
      role: 'administrator',
      source: 'test',
    };
    await s.app.accounts.add(operator, {
      username: `otto-${run}`,
      role: 'referring-physician',
      physicianId: '4567',
    });
    await s.app.accounts.add(operator, {
      username: `nemo-${run}`,
      role: 'referring-physician',
      physicianId: '0000',
    });
    const look = async (user: string) => {
      const { token } = await s.app.auth.createToken(operator, user);
      const res = await fetch(`${s.dicomweb}/studies?PatientID=${newId}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { '00100020': { Value: string[] } }[];
    };
    // An order for the patient whose studies are archived (identifier and assigning authority as in the images).
    const ack = ackOf(
      await client.send(
        ormMessage(
          nextControl(),
          { id: newId, family: 'EVERYMAN', given: 'ADAM', authority: 'XYZ' },
          {
            placer: `PL3-${run}`,
            filler: `FL3-${run}`,
            accession: `ACC3-${run}`,
            procedure: ['71020', 'CHEST PA AND LATERAL'],
            ordering: ['4567', 'ORDERING', 'OTTO'],
            referring: ['7890', 'REFER', 'RITA'],
            service: 'CAR',
          },
        ),
      ),
    );
    expect(ack.code).toBe('AA');
    const seen = await look(`otto-${run}`);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r['00100020'].Value[0] === newId)).toBe(true);
    expect(await look(`nemo-${run}`)).toEqual([]);
  });
  it('ends the access a cancelled order gave its physicians, and keeps the one another live order gives', async () => {
    const operator = {
      kind: 'system' as const,
      id: 'x' as never,
      name: 'system:test',
      role: 'administrator',
      source: 'test',
    };
    const patientId = `CANC-${run}`;
    const patient = { id: patientId, family: 'CANCEL', given: 'PAT', authority: 'XYZ' };
    const study = uid(41);
    const { body, contentType } = stowBody([
      {
        bytes: makeInstance({
          studyUid: study,
          seriesUid: uid(51),
          sopInstanceUid: uid(61),
          accessionNumber: '',
          patientId,
        }),
      },
    ]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    expect(stow.status, await stow.text()).toBe(200);
    const users = { ordering: `ocan-${run}`, referring: `rcan-${run}`, other: `kcan-${run}` };
    await s.app.accounts.add(operator, {
      username: users.ordering,
      role: 'referring-physician',
      physicianId: 'CAN-O',
    });
    await s.app.accounts.add(operator, {
      username: users.referring,
      role: 'referring-physician',
      physicianId: 'CAN-R',
    });
    await s.app.accounts.add(operator, {
      username: users.other,
      role: 'referring-physician',
      physicianId: 'CAN-K',
    });
    const sees = async (user: string) => {
      const { token } = await s.app.auth.createToken(operator, user);
      const res = await fetch(`${s.dicomweb}/studies?PatientID=${patientId}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const found = ((await res.json()) as { '0020000D': { Value: string[] } }[]).map(
        (r) => r['0020000D'].Value[0],
      );
      const metadata = await fetch(`${s.dicomweb}/studies/${study}/metadata`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      await metadata.arrayBuffer();
      expect(found.length > 0, `QIDO and WADO-RS agree for ${user}`).toBe(metadata.status === 200);
      return found;
    };
    const order = {
      placer: `CANC-${run}`,
      filler: `CANCF-${run}`,
      accession: `CANCA-${run}`,
      procedure: ['71020', 'CHEST'] as [string, string],
      ordering: ['CAN-O', 'ORDERING', 'OLGA'] as [string, string, string],
      referring: ['CAN-R', 'REFER', 'RUTH'] as [string, string, string],
    };
    // A second order for the same patient, still live, by which Dr Ruth also refers the patient.
    const second = {
      ...order,
      placer: `CANC2-${run}`,
      filler: `CANC2F-${run}`,
      accession: `CANC2A-${run}`,
      ordering: ['CAN-K', 'OTHER', 'KARL'] as [string, string, string],
    };
    expect(ackOf(await client.send(ormMessage(nextControl(), patient, order))).code).toBe('AA');
    expect(ackOf(await client.send(ormMessage(nextControl(), patient, second))).code).toBe('AA');
    for (const user of Object.values(users)) expect(await sees(user)).toEqual([study]);

    // The RIS cancels the first order (ORC-1 CA): Dr Olga ordered nothing else for this patient.
    const cancel = (message: string, control: string) => message.replace(/^ORC\|NW\|/m, `ORC|${control}|`);
    expect(ackOf(await client.send(cancel(ormMessage(nextControl(), patient, order), 'CA'))).code).toBe('AA');
    expect(await sees(users.ordering)).toEqual([]);
    expect(await sees(users.referring)).toEqual([study]);
    expect(await sees(users.other)).toEqual([study]);
    const [record] = await s.app.auditStore.search({ action: ['hl7-order'], patientId, limit: 1 });
    expect(record?.detail).toMatchObject({
      status: 'cancelled',
      previousStatus: 'scheduled',
      relationshipsEnded: [
        { relationship: 'ordering', physicianId: 'CAN-O' },
        { relationship: 'referring', physicianId: 'CAN-R' },
      ],
    });

    // The second order is discontinued (ORC-1 DC): nobody keeps access through an order.
    expect(ackOf(await client.send(cancel(ormMessage(nextControl(), patient, second), 'DC'))).code).toBe(
      'AA',
    );
    for (const user of Object.values(users)) expect(await sees(user)).toEqual([]);

    // The RIS reinstates the first order, its physicians left empty: those known give access again.
    const reinstated = ormMessage(nextControl(), patient, order)
      .replace(/^(PV1(?:\|[^|\r]*){7})\|[^|\r]*/m, '$1|')
      .replace(/^(ORC(?:\|[^|\r]*){11})\|[^|\r]*/m, '$1|')
      .replace(/^(OBR(?:\|[^|\r]*){15})\|[^|\r]*/m, '$1|')
      .replace(/^ORC\|NW\|/m, 'ORC|XO|');
    expect(ackOf(await client.send(reinstated)).code).toBe('AA');
    expect(await sees(users.ordering)).toEqual([study]);
    expect(await sees(users.referring)).toEqual([study]);
    expect(await sees(users.other)).toEqual([]);
  });

  it('reads a frame that a new start block begins as its own message, and answers the one it cut short AR/100', async () => {
    const c = await MllpClient.connect(s.hl7Port!);
    try {
      const id = `CUT-${run}`;
      const given = adtMessage('A01', 'CUT-1', { id, family: 'GIVEN', given: 'UP' });
      const sent = adtMessage('A01', 'CUT-2', { id, family: 'SENT', given: 'AGAIN' });
      // The sender gives the first message up after its MSH and starts the next, on the same connection.
      const cutAt = given.indexOf('\r') + 10;
      c.write(Buffer.concat([Buffer.of(0x0b), Buffer.from(given.slice(0, cutAt)), mllpFrame(sent)]));
      const cut = ackOf(await c.next());
      expect(cut).toMatchObject({ code: 'AR', errorCode: '100', controlId: 'CUT-1' });
      expect(cut.userMessage).toMatch(new RegExp(`a frame of ${cutAt} byte\\(s\\) was not finished`));
      expect(ackOf(await c.next())).toMatchObject({ code: 'AA', controlId: 'CUT-2' });
      expect(
        await s.app.index.db
          .selectFrom('patients')
          .select('patient_name')
          .where('patient_id', '=', id)
          .execute(),
      ).toEqual([{ patient_name: expect.stringMatching(/^SENT\^AGAIN\^/) }]);
      const [refusal] = await s.app.auditStore.search({
        action: ['hl7-message'],
        outcome: 'failure',
        limit: 1,
      });
      expect(refusal?.detail).toMatchObject({ controlId: 'CUT-1', hl7Error: 100 });
    } finally {
      await c.close();
    }
  });

  it('records a message the connection closed inside, unapplied, as no ACK can say so', async () => {
    const c = await MllpClient.connect(s.hl7Port!);
    const id = `DROP-${run}`;
    const message = adtMessage('A01', 'DROP-1', { id, family: 'DROP', given: 'PED' });
    // The peer goes away in the middle of its message.
    c.write(Buffer.concat([Buffer.of(0x0b), Buffer.from(message.slice(0, message.length - 20))]));
    await c.close();
    const dropped = async () =>
      (await s.app.auditStore.search({ action: ['hl7-message'], outcome: 'failure', limit: 5 })).find(
        (r) => r.detail?.controlId === 'DROP-1',
      );
    for (let i = 0; i < 100 && !(await dropped()); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await dropped())?.detail).toMatchObject({
      sender: 'ADT1^GOOD HEALTH HOSPITAL',
      messageType: 'ADT^A01',
      reason: `the connection closed ${message.length - 20} byte(s) into a frame, before its end block (0x1C 0x0D): nothing of it was applied`,
    });
    expect(
      await s.app.index.db.selectFrom('patients').select('pk').where('patient_id', '=', id).execute(),
    ).toEqual([]);
  });

  it('answers malformed input with AE/AR and an ERR naming the problem, and keeps serving', async () => {
    const c = await MllpClient.connect(s.hl7Port!);
    try {
      // Garbage between frames, then a good message in the same packet.
      const good1 = adtMessage('A08', 'GOOD-1', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' });
      c.write(Buffer.concat([Buffer.from('hello there\r\n'), mllpFrame(good1)]));
      const garbage = ackOf(await c.next());
      expect(garbage).toMatchObject({ code: 'AR', errorCode: '100' });
      expect(garbage.userMessage).toMatch(/outside an MLLP frame/);
      expect(ackOf(await c.next())).toMatchObject({ code: 'AA', controlId: 'GOOD-1' });

      // No MSH.
      const noMsh = ackOf(await c.send('PID|||123^^^HOSP^MR||DOE^JOHN\r'));
      expect(noMsh).toMatchObject({ code: 'AR', errorCode: '100' });
      expect(noMsh.userMessage).toMatch(/must begin with an MSH segment/);

      // Unknown message type and unknown ADT event.
      const zzz = ackOf(
        await c.send('MSH|^~\\&|RIS|HOSP|CUSTOS|RAD|20240101||ZZZ^Z99^ZZZ|Z-1|P|2.5.1\rPID|||1\r'),
      );
      expect(zzz).toMatchObject({ code: 'AR', errorCode: '200', controlId: 'Z-1', errorLocation: 'MSH-9' });
      const a03 = adtMessage('A01', 'A03-1', { id: newId, family: 'X', given: 'Y' }).replace(
        'ADT^A01',
        'ADT^A03',
      );
      expect(ackOf(await c.send(a03))).toMatchObject({ code: 'AR', errorCode: '201' });

      // A test system's message (MSH-11 T): rejected, nothing applied, and answered as a test message.
      const test = adtMessage('A08', 'T-1', { id: newId, family: 'TESTONLY', given: 'Y' }).replace(
        '|P|2.5.1',
        '|T|2.5.1',
      );
      expect(test).toContain('|T-1|T|2.5.1');
      const testAck = await c.send(test);
      expect(ackOf(testAck)).toMatchObject({ code: 'AR', errorCode: '202', errorLocation: 'MSH-11' });
      // Until 7 Dec 2026 the ACK said P.
      expect(parseHl7(testAck).processingId).toBe('T');
      expect(
        await s.app.index.db
          .selectFrom('patients')
          .select('pk')
          .where('patient_name', 'like', 'TESTONLY%')
          .execute(),
      ).toEqual([]);

      // Missing PID-3.
      const noId = adtMessage('A01', 'NOID-1', { id: newId, family: 'X', given: 'Y' }).replace(
        /PID\|1\|\|[^|]*\|/,
        'PID|1|||',
      );
      const missing = ackOf(await c.send(noId));
      expect(missing).toMatchObject({ code: 'AE', errorCode: '101', errorLocation: 'PID-3', severity: 'E' });
      expect(missing.userMessage).toMatch(/PID-3 \(patient identifier list\) is required/);

      // An over-long frame, split over many writes.
      const long = adtMessage('A08', 'LONG-1', {
        id: newId,
        family: 'X'.repeat(MAX_MESSAGE_BYTES),
        given: 'Y',
      });
      const framed = mllpFrame(long);
      for (let i = 0; i < framed.length; i += 1000) c.write(framed.subarray(i, i + 1000));
      const tooLong = ackOf(await c.next());
      expect(tooLong).toMatchObject({ code: 'AR', errorCode: '207', controlId: 'LONG-1' });
      expect(tooLong.userMessage).toMatch(/more than the 16384 bytes/);

      // One message split byte by byte, and two messages in one write: replies come in order.
      const split = mllpFrame(
        adtMessage('A08', 'SPLIT-1', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' }),
      );
      for (const b of split) c.write(Buffer.of(b));
      expect(ackOf(await c.next())).toMatchObject({ code: 'AA', controlId: 'SPLIT-1' });
      c.write(
        Buffer.concat([
          mllpFrame(adtMessage('A08', 'PAIR-1', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' })),
          mllpFrame(adtMessage('A08', 'PAIR-2', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' })),
        ]),
      );
      expect(ackOf(await c.next()).controlId).toBe('PAIR-1');
      expect(ackOf(await c.next()).controlId).toBe('PAIR-2');
      expect(c.isClosed).toBe(false);
    } finally {
      await c.close();
    }
    // The failures are in the ledger.
    const failures = await s.app.auditStore.search({
      action: ['hl7-message'],
      outcome: 'failure',
      limit: 50,
    });
    expect(failures.map((r) => r.detail?.controlId)).toEqual(
      expect.arrayContaining(['Z-1', 'A03-1', 'NOID-1', 'LONG-1']),
    );
  });

  it('answers bytes outside a frame that no frame follows (a TLS handshake, an HTTP request) with AR/100, and keeps serving', async () => {
    // Until 7 Dec 2026 they were answered only once a frame began, which such a peer never sends: it got nothing, and
    // its connection was held until hl7.idleTimeoutSeconds.
    for (const bytes of [
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]) {
      const c = await MllpClient.connect(s.hl7Port!);
      try {
        c.write(bytes);
        const refused = ackOf(await c.next());
        expect(refused).toMatchObject({ code: 'AR', errorCode: '100' });
        expect(refused.userMessage).toBe(
          `${bytes.length} byte(s) arrived outside an MLLP frame (a message starts with 0x0B and ends with 0x1C 0x0D) and were ignored`,
        );
        // More of them is not answered again; the next message is.
        c.write(
          Buffer.concat([
            bytes,
            mllpFrame(adtMessage('A01', 'AFTER-1', { id: `AFTER-${run}`, family: 'A', given: 'B' })),
          ]),
        );
        expect(ackOf(await c.next())).toMatchObject({ code: 'AA', controlId: 'AFTER-1' });
      } finally {
        await c.close();
      }
    }
  });

  it('closes a connection that streams bytes without end, outside a frame or in one past twice hl7.maxMessageBytes', async () => {
    // Until 8 Dec 2026 such a peer was read for as long as it sent: each read started the idle time again, so its
    // connection was never closed.
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    /** Writes `chunk` again and again until the connection closes, or 40 times the limit is sent; returns how much. */
    const stream = async (c: MllpClient, chunk: Buffer) => {
      let sent = 0;
      while (!c.isClosed && sent < 40 * MAX_MESSAGE_BYTES) {
        c.write(chunk);
        sent += chunk.length;
        await sleep(2);
      }
      for (let i = 0; i < 50 && !c.isClosed; i++) await sleep(100);
      return sent;
    };
    const failures = async () =>
      s.app.auditStore.search({ action: ['hl7-message'], outcome: 'failure', limit: 10 });

    const outside = await MllpClient.connect(s.hl7Port!);
    try {
      outside.write(Buffer.from('junk'));
      expect(ackOf(await outside.next())).toMatchObject({ code: 'AR', errorCode: '100' });
      await stream(outside, Buffer.alloc(1000, 'j'));
      expect(outside.isClosed).toBe(true);
      // No second AR: the run was answered as it began.
      await expect(outside.next(100)).rejects.toThrow(/closed before a reply/);
    } finally {
      await outside.close();
    }
    const closedOutside = (await failures()).find((r) =>
      /outside an MLLP frame in a row/.test(String(r.detail?.reason)),
    );
    expect(closedOutside?.detail).toMatchObject({
      hl7Error: 100,
      reason: expect.stringMatching(
        /^\d+ byte\(s\) arrived outside an MLLP frame in a row, more than the 16384 bytes this archive reads there \(hl7\.maxMessageBytes\): the connection was closed$/,
      ),
    });

    const endless = await MllpClient.connect(s.hl7Port!);
    try {
      const header = adtMessage('A01', 'ENDLESS-1', { id: `ENDLESS-${run}`, family: 'A', given: 'B' });
      endless.write(Buffer.concat([Buffer.of(0x0b), Buffer.from(header)]));
      await stream(endless, Buffer.alloc(1000, 'x'));
      const refused = ackOf(await endless.next());
      expect(refused).toMatchObject({ code: 'AR', errorCode: '207', controlId: 'ENDLESS-1' });
      expect(refused.userMessage).toMatch(
        /^the message is \d+ bytes so far with no end block \(0x1C 0x0D\), more than twice the 16384 bytes this archive accepts \(hl7\.maxMessageBytes\); it was not applied, and the connection was closed$/,
      );
      expect(endless.isClosed).toBe(true);
    } finally {
      await endless.close();
    }
    const records = (await failures()).filter((r) => r.detail?.controlId === 'ENDLESS-1');
    // Recorded once: not again as a frame the connection closed inside.
    expect(records).toHaveLength(1);
    expect(records[0]!.detail).toMatchObject({ messageType: 'ADT^A01', hl7Error: 207 });

    // The listener keeps serving.
    const next = await MllpClient.connect(s.hl7Port!);
    try {
      expect(
        ackOf(
          await next.send(
            adtMessage('A08', 'AFTER-ENDLESS', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' }),
          ),
        ),
      ).toMatchObject({ code: 'AA', controlId: 'AFTER-ENDLESS' });
    } finally {
      await next.close();
    }
  });

  it('answers mllp_send a message more than twice hl7.maxMessageBytes with AR, then closes its connection', async () => {
    const huge = adtMessage('A08', 'PY-HUGE', {
      id: newId,
      family: 'X'.repeat(3 * MAX_MESSAGE_BYTES),
      given: 'Y',
    });
    const acks = await mllpSend(certDir, s.hl7Port!, [
      huge,
      adtMessage('A08', 'PY-AFTER-HUGE', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' }),
    ]);
    // The second message met a closed connection: mllp_send read no ACK for it.
    expect(acks).toHaveLength(1);
    const refused = ackOf(acks[0]!);
    expect(refused).toMatchObject({ code: 'AR', errorCode: '207', controlId: 'PY-HUGE' });
    expect(refused.userMessage).toMatch(/more than twice the 16384 bytes .* and the connection was closed$/);
  });

  it('declines to serve the bytes of a deflated object whose header needs a correction, and says why', async () => {
    const study = uid(11);
    const series = uid(12);
    const sop = uid(13);
    const bytes = makeInstance({
      studyUid: study,
      seriesUid: series,
      sopInstanceUid: sop,
      patientId: newId,
      patientName: 'Stale^Name',
      // Orders are known by now (earlier tests): the accession must match one, or validation quarantines it.
      accessionNumber: `ACC-${run}`,
      transferSyntaxUid: '1.2.840.10008.1.2.1.99',
    });
    const { body, contentType } = stowBody([{ bytes }]);
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { ...auth(), 'Content-Type': contentType },
      body,
    });
    // Stored, with a warning: the header's patient demographics disagree with the patient index (which the
    // served headers follow).
    expect(stow.status, await stow.clone().text()).toBe(202);
    expect(stow.headers.get('warning')).toMatch(
      /\(0010,00(10|40)\) Patient(Name|Sex) differs from the patient index/,
    );
    const res = await fetch(`${s.dicomweb}/studies/${study}`, {
      headers: { ...auth(), Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    expect(res.status).toBe(406);
    const problem = (await res.json()) as { detail?: string; title?: string };
    expect(JSON.stringify(problem)).toMatch(/deflated transfer syntax .* Custos does not re-deflate/);
    const meta = await fetch(`${s.dicomweb}/studies/${study}/metadata`, {
      headers: { ...auth(), Accept: 'application/dicom+json' },
    });
    const [instance] = (await meta.json()) as Json[];
    expect(pnText(instance!, '00100010')).not.toBe('Stale^Name');
    expect(instance!['00100020']?.Value).toEqual([newId]);
  });

  it('rejects and audits a sender that is not on the allow-list', async () => {
    const msg = adtMessage(
      'A08',
      'INTRUDER-1',
      { id: newId, family: 'MALLORY', given: 'EVE' },
      'EVIL^ELSEWHERE',
    );
    const ack = ackOf(await client.send(msg));
    expect(ack).toMatchObject({ code: 'AR', errorLocation: 'MSH-3' });
    expect(ack.userMessage).toMatch(/EVIL\^ELSEWHERE .* not allowed/);
    const [hit] = await qido(`/studies?PatientID=${newId}`);
    expect(pnText(hit!, '00100010')).not.toMatch(/MALLORY/);
    const [record] = await s.app.auditStore.search({ action: ['hl7-message'], outcome: 'denied', limit: 1 });
    expect(record).toMatchObject({
      actor: { name: 'hl7:EVIL^ELSEWHERE' },
      detail: { controlId: 'INTRUDER-1' },
    });
  });

  it('rejects a frame that holds a second MSH (a second message smuggled in) and applies nothing of it', async () => {
    const [before] = await qido(`/studies?PatientID=${newId}`);
    const nameBefore = pnText(before!, '00100010');
    // An allowed sender's message, then a second message from a sender the allow-list does not hold, in one frame.
    const frame =
      adtMessage('A08', 'SMUGGLE-1', { id: newId, family: 'FIRSTPART', given: 'ADAM' }) +
      adtMessage('A08', 'SMUGGLE-2', { id: newId, family: 'MALLORY', given: 'EVE' }, 'EVIL^ELSEWHERE');
    const ack = ackOf(await client.send(frame));
    expect(ack).toMatchObject({ code: 'AR', errorCode: '100', controlId: 'SMUGGLE-1', errorLocation: 'MSH' });
    expect(ack.userMessage).toMatch(/second MSH/);
    const [after] = await qido(`/studies?PatientID=${newId}`);
    expect(pnText(after!, '00100010')).toBe(nameBefore);
    const updates = await s.app.auditStore.search({ action: ['hl7-patient-update'], limit: 50 });
    expect(updates.map((r) => r.detail?.controlId)).not.toEqual(
      expect.arrayContaining([expect.stringMatching(/^SMUGGLE-/)]),
    );
    const [refusal] = await s.app.auditStore.search({
      action: ['hl7-message'],
      outcome: 'failure',
      limit: 1,
    });
    expect(refusal).toMatchObject({ detail: { controlId: 'SMUGGLE-1' } });
  });

  it('answers a v2.3 message it refuses with the error code in MSA-6 and ERR-1, as that version reads it', async () => {
    // Until 8 Dec 2026 the code was only in ERR-2 and ERR-3, which HL7 v2.3 and v2.4 do not define.
    const message = adtMessage('A01', 'V23-1', { id: newId, family: 'X', given: 'Y' })
      .replace('|P|2.5.1', '|P|2.3')
      .replace(/PID\|1\|\|[^|]*\|/, 'PID|1|||');
    expect(message).toContain('|V23-1|P|2.3');
    const ack = parseHl7(await client.send(message));
    expect(ack.version).toBe('2.3');
    expect(value(ack.segment('MSA'), 1)).toBe('AE');
    expect(value(ack.segment('MSA'), 2)).toBe('V23-1');
    expect([1, 2, 3].map((c) => value(ack.segment('MSA'), 6, c))).toEqual([
      '101',
      'Required field missing',
      'HL70357',
    ]);
    const err = ack.segment('ERR');
    expect([1, 2, 3].map((c) => value(err, 1, c))).toEqual(['PID', '1', '3']);
    expect([1, 2, 3].map((sub) => value(err, 1, 4, sub))).toEqual([
      '101',
      'Required field missing',
      'HL70357',
    ]);
    // A v2.5.1 message's ACK leaves both to ERR-2 and ERR-3.
    const current = parseHl7(
      await client.send(
        adtMessage('A01', 'V251-1', { id: newId, family: 'X', given: 'Y' }).replace(
          /PID\|1\|\|[^|]*\|/,
          'PID|1|||',
        ),
      ),
    );
    expect(value(current.segment('MSA'), 6)).toBe('');
    expect(value(current.segment('ERR'), 1)).toBe('');
    expect(value(current.segment('ERR'), 3)).toBe('101');
  });

  it('echoes a control id holding escape sequences in MSA-2 escaped once, as it was sent', async () => {
    // MSH-10 as encoded on the wire: ESC|1\X with the field separator and the escape character escaped.
    const sent = 'ESC\\F\\1\\E\\X';
    const text = await client.send(
      adtMessage('A08', sent, { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' }),
    );
    const msa = text.split('\r').find((l) => l.startsWith('MSA|'));
    expect(msa?.split('|')[2]).toBe(sent);
    expect(ackOf(text)).toMatchObject({ code: 'AA', controlId: 'ESC|1\\X' });
    // A refused message's ACK echoes it the same way.
    const refused = await client.send(`MSH|^~\\&|RIS|HOSP|CUSTOS|RAD|20240101||ZZZ^Z99|${sent}|P|2.5.1\r`);
    expect(
      refused
        .split('\r')
        .find((l) => l.startsWith('MSA|'))
        ?.split('|')[2],
    ).toBe(sent);
  });

  it('accepts messages over MLLP with TLS 1.2 or later', async () => {
    const c = await MllpClient.connect(s.hl7TlsPort!, { ca: certPem, minVersion: 'TLSv1.2' });
    try {
      const ack = ackOf(
        await c.send(adtMessage('A08', 'TLS-1', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' })),
      );
      expect(ack).toMatchObject({ code: 'AA', controlId: 'TLS-1' });
    } finally {
      await c.close();
    }
    const [record] = await s.app.auditStore.search({ action: ['hl7-patient-update'], limit: 1 });
    expect(record!.detail).toMatchObject({ controlId: 'TLS-1' });
    expect(record!.actor.via).toBe('mllp-tls');
    // A plain-text MLLP client on the TLS port gets no HL7 answer.
    const plain = await MllpClient.connect(s.hl7TlsPort!);
    plain.write(mllpFrame(adtMessage('A08', 'PLAIN-1', { id: newId, family: 'X', given: 'Y' })));
    await expect(plain.next(5000)).rejects.toThrow();
    await plain.close();
  });

  it('talks to mllp_send (python3-hl7, Debian), a real MLLP client', async () => {
    expect(existsSync('/usr/bin/mllp_send'), 'install the Debian package python3-hl7 for mllp_send').toBe(
      true,
    );
    const acks = await mllpSend(certDir, s.hl7Port!, [
      adtMessage('A08', 'PY-1', { id: newId, family: 'EVERYMAN-SMITH', given: 'ADAM' }),
      'MSH|^~\\&|RIS|HOSP|CUSTOS|RAD|20240101||ZZZ^Z99|PY-2|P|2.5.1\r',
    ]);
    expect(acks).toHaveLength(2);
    expect(ackOf(acks[0]!)).toMatchObject({ code: 'AA', controlId: 'PY-1' });
    expect(ackOf(acks[1]!)).toMatchObject({ code: 'AR', controlId: 'PY-2', errorCode: '200' });
  });
});

describe.each(backends())('HL7 feed: what a message must hold to be applied, on %s', (backend) => {
  let s: TestServer;
  let client: MllpClient;
  const run = uid(20).slice(-8);

  /** The patient index rows under this PatientID, as (issuer, name, birth date). */
  const patients = async (patientId: string) =>
    s.app.index.db
      .selectFrom('patients')
      .select(['issuer', 'patient_name', 'birth_date'])
      .where('patient_id', '=', patientId)
      .orderBy('issuer')
      .execute();

  /** Order `n` of a physician test, its numbers starting with `prefix`: ordering 4567, referring 7890. */
  const physicianOrder = (prefix: string, n: number) => ({
    placer: `${prefix}-${n}-${run}`,
    filler: `${prefix}F-${n}-${run}`,
    accession: `${prefix}A-${n}-${run}`,
    procedure: ['71020', 'CHEST'] as [string, string],
    ordering: ['4567', 'ORDERING', 'OTTO'] as [string, string, string],
    referring: ['7890', 'REFER', 'RITA'] as [string, string, string],
  });
  /** ORC-12 emptied, so that the ordering provider is read from OBR-16. */
  const withoutOrc12 = (m: string) => m.replace(/^(ORC(?:\|[^|\r]*){11})\|[^|\r]*/m, '$1|');

  /**
   * STOW one object per PatientID, without IssuerOfPatientID or accession number (orders this server knows would
   * quarantine an unknown one), each in a study of its own; returns the studies.
   */
  const storeWithoutIssuer = async (ids: string[], status?: number) => {
    const studies = ids.map(() => uid(40));
    const { body, contentType } = stowBody(
      ids.map((patientId, i) => ({
        bytes: makeInstance({
          studyUid: studies[i]!,
          seriesUid: uid(50),
          sopInstanceUid: uid(60),
          accessionNumber: '',
          patientId,
        }),
      })),
    );
    const stow = await fetch(`${s.dicomweb}/studies`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType },
      body,
    });
    const text = await stow.text();
    if (status === undefined) expect(stow.status, text).toBeLessThan(300);
    else expect(stow.status, text).toBe(status);
    return studies;
  };

  /** A patient sent by A01 (issuer XYZ); returns its pk. */
  const admitted = async (id: string) => {
    expect(
      ackOf(
        await client.send(adtMessage('A01', `LP-${id}`, { id, authority: 'XYZ', family: 'LO', given: 'OP' })),
      ).code,
    ).toBe('AA');
    return (
      await s.app.index.db
        .selectFrom('patients')
        .select('pk')
        .where('patient_id', '=', id)
        .executeTakeFirstOrThrow()
    ).pk;
  };

  /**
   * Patients A and B in a loop as the index could hold it before cyclic merges were refused: A into B, then B into
   * A (the newest). Returns their pks.
   */
  const mergeLoop = async (a: string, b: string) => {
    const [pkA, pkB] = [await admitted(a), await admitted(b)];
    for (const [prior, priorPk, survivorPk] of [
      [a, pkA, pkB],
      [b, pkB, pkA],
    ] as const)
      await s.app.index.db
        .insertInto('patient_merges')
        .values({
          event: 'A40',
          prior_patient_id: prior,
          prior_issuer: 'XYZ',
          prior_patient_pk: priorPk,
          surviving_patient_pk: survivorPk,
          studies_moved: 0,
          sender: 'REGADT^MCM',
          message_control_id: `LOOP-${prior}`,
          merged_at: new Date().toISOString(),
        })
        .execute();
    return [pkA, pkB] as const;
  };

  beforeAll(async () => {
    s = await startTestServer(backend, { hl7: { port: 0, senders: SENDERS } });
    client = await MllpClient.connect(s.hl7Port!);
  });

  afterAll(async () => {
    await client?.close();
    await s?.stop();
    expect(s.unexpected).toEqual([]);
  });

  it('applies an identifier without assigning authority to the one patient under that ID, and refuses it (205) when several issuers share the ID', async () => {
    const id = `NOAUTH-${run}`;
    const send = async (control: string, p: Omit<ExamplePatient, 'id'>) =>
      ackOf(await client.send(adtMessage('A08', control, { id, ...p })));
    expect(await send('NA-1', { authority: 'AUTH-A', family: 'FIRST', given: 'ANNA' })).toMatchObject({
      code: 'AA',
    });
    // PID-3 without CX-4: the patient known under the ID, not a second patient with issuer ''.
    expect(await send('NA-2', { authority: '', family: 'SECOND', given: 'ANNA' })).toMatchObject({
      code: 'AA',
    });
    expect(await patients(id)).toEqual([
      { issuer: 'AUTH-A', patient_name: 'SECOND^ANNA^^^III', birth_date: '19610615' },
    ]);
    // The record names the patient the identifier resolved to, and what the message sent.
    const records = await s.app.auditStore.search({
      action: ['hl7-patient-update'],
      patientId: id,
      limit: 10,
    });
    expect(records.find((r) => r.detail?.controlId === 'NA-2')?.detail).toMatchObject({
      issuer: 'AUTH-A',
      sentIssuer: '',
      created: false,
    });
    expect(records.find((r) => r.detail?.controlId === 'NA-1')?.detail).not.toHaveProperty('sentIssuer');
    // So does a merge's: MRG-1 and PID-3 without CX-4 name the patients known under their IDs.
    const [survivor, other] = [`NOAUTH-S-${run}`, `NOAUTH-M-${run}`];
    for (const [control, pid, authority] of [
      ['NA-M1', survivor, 'AUTH-A'],
      ['NA-M2', other, 'AUTH-M'],
    ] as const)
      expect(
        ackOf(await client.send(adtMessage('A08', control, { id: pid, authority, family: 'M', given: 'M' })))
          .code,
      ).toBe('AA');
    const merge = mergeMessage('NA-M3', { id: survivor, authority: '', family: 'M', given: 'M' }, other);
    expect(ackOf(await client.send(merge)).code).toBe('AA');
    const [mergeRecord] = await s.app.auditStore.search({
      action: ['hl7-patient-merge'],
      patientId: survivor,
      limit: 1,
    });
    expect(mergeRecord?.detail).toMatchObject({
      controlId: 'NA-M3',
      surviving: { patientId: survivor, issuer: 'AUTH-A', sentIssuer: '' },
      merged: { patientId: other, issuer: 'AUTH-M', sentIssuer: '' },
    });
    // Another issuer's patient with the same ID: an identifier without authority no longer names one patient.
    expect(await send('NA-3', { authority: 'AUTH-B', family: 'OTHER', given: 'BERT' })).toMatchObject({
      code: 'AA',
    });
    const refused = await send('NA-4', { authority: '', family: 'THIRD', given: 'ANNA' });
    expect(refused).toMatchObject({ code: 'AE', errorCode: '205', errorLocation: 'PID-3' });
    expect(refused.userMessage).toMatch(/no assigning authority .* 2 patients share that ID/);
    expect(await patients(id)).toEqual([
      { issuer: 'AUTH-A', patient_name: 'SECOND^ANNA^^^III', birth_date: '19610615' },
      { issuer: 'AUTH-B', patient_name: 'OTHER^BERT^^^III', birth_date: '19610615' },
    ]);
  });

  it('refuses an invalid PID-7 birth date (AE/102) and leaves the patient as it was', async () => {
    const id = `BIRTH-${run}`;
    const send = async (control: string, birth: string) =>
      ackOf(await client.send(adtMessage('A08', control, { id, family: 'DATE', given: 'DORA', birth })));
    expect(await send('BD-1', '19800101')).toMatchObject({ code: 'AA' });
    for (const [control, birth] of [
      ['BD-2', '20241345'],
      ['BD-3', 'abc'],
    ]) {
      const ack = await send(control!, birth!);
      expect(ack, birth).toMatchObject({ code: 'AE', errorCode: '102', errorLocation: 'PID-7' });
      expect(ack.userMessage).toMatch(/is not an HL7 date\/time/);
    }
    expect(await patients(id)).toEqual([
      { issuer: 'GOOD HEALTH HOSPITAL', patient_name: 'DATE^DORA^^^III', birth_date: '19800101' },
    ]);
  });

  it('refuses PID text DICOM cannot hold (AE/102, naming the field) and leaves the patient as it was', async () => {
    const id = `TEXT-${run}`;
    const send = async (control: string, p: Omit<ExamplePatient, 'id'>) =>
      ackOf(await client.send(adtMessage('A08', control, { id, ...p })));
    expect(await send('TX-1', { family: 'PLAIN', given: 'PAT' })).toMatchObject({ code: 'AA' });
    const refusals: [string, Omit<ExamplePatient, 'id'>, RegExp][] = [
      ['TX-2', { family: 'BACK\\E\\SLASH', given: 'PAT' }, /PID-5\.1 \(patient name\) holds a backslash/],
      ['TX-3', { family: 'PLAIN', given: 'TAB\\X09\\BED' }, /PID-5\.2 \(patient name\) holds the control/],
      ['TX-4', { family: 'L'.repeat(65), given: 'PAT' }, /PID-5\.1 \(patient name\) is 65 characters/],
      [
        'TX-5',
        { family: 'PLAIN', given: 'PAT', authority: 'A'.repeat(65) },
        /PID-3\.4 \(assigning authority\)/,
      ],
    ];
    for (const [control, p, why] of refusals) {
      const ack = await send(control, p);
      expect(ack, control).toMatchObject({ code: 'AE', errorCode: '102' });
      expect(ack.userMessage).toMatch(why);
    }
    expect(await patients(id)).toEqual([
      { issuer: 'GOOD HEALTH HOSPITAL', patient_name: 'PLAIN^PAT^^^III', birth_date: '19610615' },
    ]);
  });

  it('refuses physician names DICOM cannot hold in PV1-8, ORC-12 and OBR-16 (AE/102, naming the field) and stores no order', async () => {
    const order = (n: number) => physicianOrder('PHYS', n);
    const patient = { id: `PHYS-${run}`, family: 'PHYS', given: 'PAT' };
    const refusals: [string, string, string, RegExp][] = [
      [
        'PH-1',
        ormMessage('PH-1', patient, { ...order(1), referring: ['7890', 'REF\\E\\ER', 'RITA'] }),
        'PV1-8',
        /PV1-8\.2 \(referring doctor\) holds a backslash .* ReferringPhysicianName/,
      ],
      [
        'PH-2',
        ormMessage('PH-2', patient, { ...order(2), ordering: ['4567', 'ORDERING', 'OT\\X0A\\TO'] }),
        'ORC-12',
        /ORC-12\.3 \(ordering provider\) holds the control character U\+000a/,
      ],
      [
        'PH-3',
        withoutOrc12(
          ormMessage('PH-3', patient, { ...order(3), ordering: ['4567', 'O'.repeat(65), 'OTTO'] }),
        ),
        'OBR-16',
        /OBR-16\.2 \(ordering provider\) is 65 characters as a name, more than the 64/,
      ],
    ];
    for (const [control, message, field, why] of refusals) {
      const ack = ackOf(await client.send(message));
      expect(ack, control).toMatchObject({ code: 'AE', errorCode: '102', errorLocation: field });
      expect(ack.userMessage).toMatch(why);
    }
    // The same orders with names DICOM can hold are applied, OBR-16 read when ORC-12 is empty.
    expect(ackOf(await client.send(withoutOrc12(ormMessage('PH-4', patient, order(4))))).code).toBe('AA');
    const stored = await s.app.index.db
      .selectFrom('orders')
      .select(['placer_order_number', 'ordering_physician_name', 'referring_physician_name'])
      .where('placer_order_number', 'like', `PHYS-%-${run}`)
      .execute();
    expect(stored).toEqual([
      {
        placer_order_number: `PHYS-4-${run}`,
        ordering_physician_name: 'ORDERING^OTTO',
        referring_physician_name: 'REFER^RITA',
      },
    ]);
    expect(await patients(patient.id)).toHaveLength(1);
  });

  it('refuses physician IDs (XCN-1) DICOM cannot hold in PV1-8, ORC-12 and OBR-16 (AE/102) and applies nothing', async () => {
    const order = (n: number) => physicianOrder('PHID', n);
    const patient = { id: `PHID-${run}`, family: 'PHID', given: 'PAT' };
    const refusals: [string, string, string, RegExp][] = [
      [
        'PI-1',
        ormMessage('PI-1', patient, { ...order(1), referring: ['78\\E\\90', 'REFER', 'RITA'] }),
        'PV1^1^8^1^1',
        /^PV1-8\.1 \(referring doctor ID\) holds a backslash/,
      ],
      [
        'PI-2',
        ormMessage('PI-2', patient, { ...order(2), ordering: ['45\\X0D\\67', 'ORDERING', 'OTTO'] }),
        'ORC^1^12^1^1',
        /^ORC-12\.1 \(ordering provider ID\) holds the control character U\+000d/,
      ],
      [
        'PI-3',
        withoutOrc12(
          ormMessage('PI-3', patient, { ...order(3), ordering: ['4'.repeat(65), 'ORDERING', 'OTTO'] }),
        ),
        'OBR^1^16^1^1',
        /^OBR-16\.1 \(ordering provider ID\) is 65 characters, more than the 64/,
      ],
    ];
    for (const [control, message, location, why] of refusals) {
      const text = await client.send(message);
      const ack = ackOf(text);
      expect(ack, control).toMatchObject({ code: 'AE', errorCode: '102' });
      expect(ack.userMessage).toMatch(why);
      const err = parseHl7(text).segment('ERR');
      expect([1, 2, 3, 4, 5].map((c) => value(err, 2, c)).join('^'), control).toBe(location);
    }
    expect(
      await s.app.index.db
        .selectFrom('orders')
        .select('placer_order_number')
        .where('placer_order_number', 'like', `PHID-%-${run}`)
        .execute(),
    ).toEqual([]);
    expect(await patients(patient.id)).toEqual([]);
    // The same order with IDs DICOM can hold is applied, with its care relationships.
    expect(ackOf(await client.send(ormMessage('PI-4', patient, order(4)))).code).toBe('AA');
    const relationships = await s.app.index.db
      .selectFrom('care_relationships as cr')
      .innerJoin('orders as o', 'o.pk', 'cr.order_pk')
      .select(['cr.physician_id', 'cr.relationship'])
      .where('o.placer_order_number', '=', `PHID-4-${run}`)
      .orderBy('cr.relationship')
      .execute();
    expect(relationships).toEqual([
      { physician_id: '4567', relationship: 'ordering' },
      { physician_id: '7890', relationship: 'referring' },
    ]);
  });

  it('keeps an order field left empty and deletes one sent as "" (HL7 null), physician and care relationship too', async () => {
    const order = {
      placer: `NULL-${run}`,
      filler: `NULLF-${run}`,
      accession: `NULLA-${run}`,
      procedure: ['71020', 'CHEST'] as [string, string],
      ordering: ['4567', 'ORDERING', 'OTTO'] as [string, string, string],
      referring: ['7890', 'REFER', 'RITA'] as [string, string, string],
    };
    const patient = { id: `NULL-${run}`, family: 'NULL', given: 'PAT' };
    const stored = async () =>
      s.app.index.db
        .selectFrom('orders')
        .select([
          'pk',
          'accession_number',
          'referring_physician_id',
          'referring_physician_name',
          'ordering_physician_id',
        ])
        .where('placer_order_number', '=', order.placer)
        .executeTakeFirstOrThrow();
    expect(ackOf(await client.send(ormMessage('NL-1', patient, order))).code).toBe('AA');
    // An update with OBR-18 and PV1-8 left empty keeps them.
    const empty = ormMessage('NL-2', patient, { ...order, accession: '', referring: ['', '', ''] });
    expect(ackOf(await client.send(empty)).code).toBe('AA');
    expect(await stored()).toMatchObject({
      accession_number: order.accession,
      referring_physician_id: '7890',
      referring_physician_name: 'REFER^RITA',
    });
    // The same fields sent as "" are deleted, and the referring physician's care relationship with them.
    const nulled = ormMessage('NL-3', patient, {
      ...order,
      accession: '""',
      referring: ['', '', ''],
    }).replace(/^(PV1(?:\|[^|\r]*){7})\|[^|\r]*/m, '$1|""');
    expect(nulled).toMatch(/^PV1(\|[^|\r]*){7}\|""\|/m);
    expect(ackOf(await client.send(nulled)).code).toBe('AA');
    const after = await stored();
    expect(after).toMatchObject({
      accession_number: '',
      referring_physician_id: '',
      referring_physician_name: '',
      ordering_physician_id: '4567',
    });
    const relationships = await s.app.index.db
      .selectFrom('care_relationships')
      .select(['physician_id', 'relationship'])
      .where('order_pk', '=', after.pk)
      .execute();
    expect(relationships).toEqual([{ physician_id: '4567', relationship: 'ordering' }]);
    // ORC-12 sent as "" with OBR-16, its fallback, empty: the ordering provider is deleted too.
    const noOrdering = ormMessage('NL-4', patient, { ...order, accession: '', referring: ['', '', ''] })
      .replace(/^(ORC(?:\|[^|\r]*){11})\|[^|\r]*/m, '$1|""')
      .replace(/^(OBR(?:\|[^|\r]*){15})\|[^|\r]*/m, '$1|');
    expect(ackOf(await client.send(noOrdering)).code).toBe('AA');
    expect(await stored()).toMatchObject({ accession_number: '', ordering_physician_id: '' });
    const remaining = await s.app.index.db
      .selectFrom('care_relationships')
      .select('physician_id')
      .where('order_pk', '=', after.pk)
      .execute();
    expect(remaining).toEqual([]);
  });

  it('keys an order whose placer number is sent as "" by its filler number, and refuses one with neither', async () => {
    const order = {
      placer: '""',
      filler: `NOPLACER-${run}`,
      accession: `NPA-${run}`,
      procedure: ['71020', 'CHEST'] as [string, string],
      ordering: ['4567', 'ORDERING', 'OTTO'] as [string, string, string],
      referring: ['7890', 'REFER', 'RITA'] as [string, string, string],
    };
    const patient = { id: `NOPLACER-${run}`, family: 'NOPLACER', given: 'PAT' };
    expect(ackOf(await client.send(ormMessage('NP-1', patient, order))).code).toBe('AA');
    const rows = await s.app.index.db
      .selectFrom('orders')
      .select(['order_key', 'placer_order_number', 'filler_order_number'])
      .where('filler_order_number', '=', order.filler)
      .execute();
    expect(rows).toEqual([
      { order_key: order.filler, placer_order_number: '', filler_order_number: order.filler },
    ]);
    const neither = ackOf(await client.send(ormMessage('NP-2', patient, { ...order, filler: '""' })));
    expect(neither).toMatchObject({ code: 'AE', errorLocation: expect.stringMatching(/^ORC/) });
    expect(
      await s.app.index.db.selectFrom('orders').select('pk').where('order_key', '=', '""').execute(),
    ).toEqual([]);
  });

  it('finds an order by its filler number when an update carries that alone, and refuses numbers naming two orders', async () => {
    const order = physicianOrder('FILL', 1);
    const patient = { id: `FILL-${run}`, family: 'FILL', given: 'PAT' };
    const rows = async () =>
      s.app.index.db
        .selectFrom('orders')
        .select(['order_key', 'placer_order_number', 'status', 'message_control_id'])
        .where('filler_order_number', '=', order.filler)
        .execute();
    expect(ackOf(await client.send(ormMessage('FI-1', patient, order))).code).toBe('AA');
    // The RIS cancels the order by its own (filler) number alone: ORC-2 and OBR-2 empty.
    const cancel = ormMessage('FI-2', patient, { ...order, placer: '' }).replace('ORC|NW|', 'ORC|CA|');
    expect(ackOf(await client.send(cancel)).code).toBe('AA');
    expect(await rows()).toEqual([
      {
        order_key: order.placer,
        placer_order_number: order.placer,
        status: 'cancelled',
        message_control_id: 'FI-2',
      },
    ]);
    // A placer number of another order, or one this order does not have, with this filler number: refused.
    const other = physicianOrder('FILL', 2);
    expect(ackOf(await client.send(ormMessage('FI-3', patient, other))).code).toBe('AA');
    for (const [control, placer] of [
      ['FI-4', other.placer],
      ['FI-5', `FILL-UNKNOWN-${run}`],
    ] as const) {
      const ack = ackOf(
        await client.send(ormMessage(control, patient, { ...order, placer }).replace('ORC|NW|', 'ORC|SC|')),
      );
      expect(ack, placer).toMatchObject({ code: 'AE', errorCode: '205', errorLocation: 'ORC-3' });
      expect(ack.userMessage).toMatch(
        new RegExp(`names the order of placer order number ${order.placer}, not ${placer}`),
      );
    }
    expect(await rows()).toEqual([
      {
        order_key: order.placer,
        placer_order_number: order.placer,
        status: 'cancelled',
        message_control_id: 'FI-2',
      },
    ]);
  });

  it('refuses an order whose accession number, Study Instance UID or modality DICOM cannot hold (AE/102)', async () => {
    const patient = { id: `CODED-${run}`, family: 'CODED', given: 'PAT' };
    const good = {
      placer: `CODED-${run}`,
      filler: `CODEDF-${run}`,
      accession: `CA-${run}`,
      procedure: ['CTHEAD', 'CT HEAD'] as [string, string],
      ordering: ['9012', 'ORDER', 'OSCAR'] as [string, string, string],
      referring: ['5678', 'REFER', 'RITA'] as [string, string, string],
      studyUid: uid(30),
      modality: 'CT',
    };
    for (const [bad, location, why] of [
      [
        { accession: 'ACCESSION-1234567' },
        'IPC-1',
        /IPC-1 is 17 characters, more than the 16.*AccessionNumber \(SH\)/,
      ],
      [{ studyUid: '1.2.840.01' }, 'IPC-3', /IPC-3 holds '1\.2\.840\.01'.*StudyInstanceUID \(UI\)/],
      [{ modality: 'ct' }, 'IPC-5', /IPC-5 holds 'ct'.*Modality \(CS\)/],
    ] as const) {
      const ack = ackOf(await client.send(omiMessage(`CODED-${location}`, patient, { ...good, ...bad })));
      expect(ack, location).toMatchObject({ code: 'AE', errorCode: '102', errorLocation: location });
      expect(ack.userMessage).toMatch(why);
    }
    // An ORM's accession number is OBR-18.
    const orm = ormMessage('CODED-ORM', patient, { ...good, accession: 'ACCESSION-1234567' });
    expect(ackOf(await client.send(orm))).toMatchObject({
      code: 'AE',
      errorCode: '102',
      errorLocation: 'OBR-18',
    });
    expect(
      await s.app.index.db
        .selectFrom('orders')
        .select('pk')
        .where('placer_order_number', '=', good.placer)
        .execute(),
    ).toEqual([]);
    expect(ackOf(await client.send(omiMessage('CODED-OK', patient, good))).code).toBe('AA');
  });

  it('ends the care relationship of a physician an order update replaces, and keeps the one of an unchanged one', async () => {
    const order = {
      placer: `SWAP-${run}`,
      filler: `SWAPF-${run}`,
      accession: `SWAPA-${run}`,
      procedure: ['71020', 'CHEST'] as [string, string],
      ordering: ['4567', 'ORDERING', 'OTTO'] as [string, string, string],
      referring: ['7890', 'REFER', 'RITA'] as [string, string, string],
    };
    const patient = { id: `SWAP-${run}`, family: 'SWAP', given: 'PAT' };
    const relationships = async () => {
      const { pk } = await s.app.index.db
        .selectFrom('orders')
        .select('pk')
        .where('placer_order_number', '=', order.placer)
        .executeTakeFirstOrThrow();
      return s.app.index.db
        .selectFrom('care_relationships')
        .select(['physician_id', 'relationship'])
        .where('order_pk', '=', pk)
        .orderBy('relationship')
        .execute();
    };
    expect(ackOf(await client.send(ormMessage('SW-1', patient, order))).code).toBe('AA');
    expect(await relationships()).toEqual([
      { physician_id: '4567', relationship: 'ordering' },
      { physician_id: '7890', relationship: 'referring' },
    ]);
    // The RIS corrects the referring physician: Dr Rita no longer refers this patient, Dr Nils does.
    const swapped = { ...order, referring: ['1111', 'NEW', 'NILS'] as [string, string, string] };
    expect(ackOf(await client.send(ormMessage('SW-2', patient, swapped))).code).toBe('AA');
    expect(await relationships()).toEqual([
      { physician_id: '4567', relationship: 'ordering' },
      { physician_id: '1111', relationship: 'referring' },
    ]);
  });

  it('moves the care relationships of an order an update places on another patient, and names the previous one', async () => {
    const order = physicianOrder('MOVE', 1);
    const [wrong, right] = [`MOVE-WRONG-${run}`, `MOVE-RIGHT-${run}`];
    const relationships = async () =>
      s.app.index.db
        .selectFrom('care_relationships as cr')
        .innerJoin('orders as o', 'o.pk', 'cr.order_pk')
        .innerJoin('patients as p', 'p.pk', 'cr.patient_pk')
        .select(['p.patient_id', 'cr.physician_id', 'cr.relationship'])
        .where('o.placer_order_number', '=', order.placer)
        .orderBy('cr.relationship')
        .execute();
    expect(
      ackOf(await client.send(ormMessage('MV-1', { id: wrong, family: 'WRONG', given: 'PAT' }, order))).code,
    ).toBe('AA');
    // The RIS places the order on the right patient; PV1-8 left empty keeps the referring doctor known.
    const update = ormMessage('MV-2', { id: right, family: 'RIGHT', given: 'PAT' }, order).replace(
      /^(PV1(?:\|[^|\r]*){7})\|[^|\r]*/m,
      '$1|',
    );
    expect(ackOf(await client.send(update)).code).toBe('AA');
    // The order's physicians no longer have a relationship with the patient it is not for.
    expect(await relationships()).toEqual([
      { patient_id: right, physician_id: '4567', relationship: 'ordering' },
      { patient_id: right, physician_id: '7890', relationship: 'referring' },
    ]);
    const [record] = await s.app.auditStore.search({ action: ['hl7-order'], patientId: right, limit: 1 });
    expect(record?.detail).toMatchObject({
      controlId: 'MV-2',
      previousStatus: 'scheduled',
      previousPatient: { patientId: wrong, issuer: 'MCM' },
    });
  });

  it('rejects a message whose MSH-12 version is not HL7 v2 (AR/203) and applies nothing of it', async () => {
    const id = `VERSION-${run}`;
    for (const [control, version] of [
      ['VER-1', '3.0'],
      ['VER-2', 'XYZ'],
    ] as const) {
      const msg = adtMessage('A08', control, { id, family: 'VERSION', given: 'VERA' }).replace(
        '|P|2.5.1',
        `|P|${version}`,
      );
      const ack = ackOf(await client.send(msg));
      expect(ack, version).toMatchObject({ code: 'AR', errorCode: '203', errorLocation: 'MSH-12' });
      expect(ack.userMessage).toMatch(new RegExp(`MSH-12 version '${version}' is not supported`));
    }
    expect(await patients(id)).toEqual([]);
    const [refusal] = await s.app.auditStore.search({
      action: ['hl7-message'],
      outcome: 'failure',
      limit: 1,
    });
    expect(refusal).toMatchObject({ detail: { controlId: 'VER-2', hl7Error: 203 } });
    // v2 versions other than 2.5.1 are read.
    const v23 = adtMessage('A08', 'VER-3', { id, family: 'VERSION', given: 'VERA' }).replace(
      '|P|2.5.1',
      '|P|2.3',
    );
    expect(ackOf(await client.send(v23))).toMatchObject({ code: 'AA' });
  });

  it('decodes by MSH-18 and rejects an unknown character set (AR/103) or bytes invalid in the declared one (AR/102)', async () => {
    const id = `CHARSET-${run}`;
    /** An A08 declaring `charset` in MSH-18, with the family name in `encoding`, framed as bytes. */
    const frame = (control: string, charset: string, family: string, encoding: BufferEncoding) => {
      const text = adtMessage('A08', control, { id, family, given: 'JURGEN' }).replace(
        '|P|2.5.1',
        `|P|2.5.1||||||${charset}`,
      );
      return Buffer.concat([Buffer.of(0x0b), Buffer.from(text, encoding), Buffer.of(0x1c, 0x0d)]);
    };
    const send = async (bytes: Buffer) => {
      client.write(bytes);
      return ackOf(await client.next());
    };
    expect(await send(frame('CS-1', '8859/1', 'MÜLLER', 'latin1'))).toMatchObject({ code: 'AA' });
    expect((await patients(id))[0]?.patient_name).toBe('MÜLLER^JURGEN^^^III');
    expect(await send(frame('CS-2', 'UNICODE UTF-8', 'GÖTZ', 'utf8'))).toMatchObject({ code: 'AA' });
    expect((await patients(id))[0]?.patient_name).toBe('GÖTZ^JURGEN^^^III');

    const refusals: [Buffer, string, RegExp][] = [
      [
        frame('CS-3', 'UNICODE UTF-8', 'WRONG-Ü', 'latin1'),
        '102',
        /declares MSH-18 'UNICODE UTF-8' but byte \d+ \(0xdc\)/,
      ],
      [frame('CS-4', 'ASCII', 'WRONG-Ü', 'latin1'), '102', /declares MSH-18 'ASCII' but byte/],
      [
        frame('CS-5', 'KLINGON', 'WRONG', 'latin1'),
        '103',
        /MSH-18 character set 'KLINGON' is not one this archive reads/,
      ],
    ];
    for (const [bytes, code, why] of refusals) {
      const ack = await send(bytes);
      expect(ack, why.source).toMatchObject({ code: 'AR', errorCode: code, errorLocation: 'MSH-18' });
      expect(ack.userMessage).toMatch(why);
    }
    expect((await patients(id))[0]?.patient_name).toBe('GÖTZ^JURGEN^^^III');
    const [refusal] = await s.app.auditStore.search({
      action: ['hl7-message'],
      outcome: 'failure',
      limit: 1,
    });
    expect(refusal).toMatchObject({ detail: { controlId: 'CS-5', hl7Error: 103 } });
  });

  it('writes each ACK in the character set its message was read in, and names it in MSH-18', async () => {
    const facility = 'KLINIKUM MÜNCHEN';
    /** An A08 from `from` (not an allowed sender: its AR echoes MSH-4 as MSH-6), MSH-18 `charset`, in `encoding`. */
    const frame = (control: string, charset: string, encoding: BufferEncoding, from = facility) => {
      const text = adtMessage(
        'A08',
        control,
        { id: `ACKCS-${run}`, family: 'ACK', given: 'CS' },
        `ADT1^${from}`,
      ).replace('|P|2.5.1', charset ? `|P|2.5.1||||||${charset}` : '|P|2.5.1');
      return Buffer.concat([Buffer.of(0x0b), Buffer.from(text, encoding), Buffer.of(0x1c, 0x0d)]);
    };
    const ackIn = async (bytes: Buffer, encoding: BufferEncoding) => {
      client.write(bytes);
      const ack = (await client.nextBytes()).toString(encoding);
      const msh = ack.split('\r')[0]!.split('|');
      return { code: ackOf(ack).code, msh6: msh[5], msh18: msh[17] ?? '' };
    };
    const denied = (msh18: string, msh6 = facility) => ({ code: 'AR', msh6, msh18 });
    expect(await ackIn(frame('ACS-1', '8859/1', 'latin1'), 'latin1')).toEqual(denied('8859/1'));
    expect(await ackIn(frame('ACS-2', 'UNICODE UTF-8', 'utf8'), 'utf8')).toEqual(denied('UNICODE UTF-8'));
    // An empty MSH-18 (ASCII, which cannot hold Ü): the ACK is written as the message was read, and says so.
    expect(await ackIn(frame('ACS-3', '', 'utf8'), 'utf8')).toEqual(denied('UNICODE UTF-8'));
    expect(await ackIn(frame('ACS-4', '', 'latin1'), 'latin1')).toEqual(denied('8859/1'));
    // An ACK in ASCII declares what the message declared.
    for (const charset of ['', '8859/1'])
      expect(await ackIn(frame('ACS-5', charset, 'latin1', 'KLINIKUM MUENCHEN'), 'latin1')).toEqual(
        denied(charset, 'KLINIKUM MUENCHEN'),
      );
  });

  it('refuses a merge back into a patient merged away before (A into B, then B into A) with AE/205', async () => {
    const a = `CYCLE-A-${run}`;
    const b = `CYCLE-B-${run}`;
    for (const id of [a, b])
      expect(
        ackOf(
          await client.send(
            adtMessage('A01', `CY-${id}`, { id, authority: 'XYZ', family: 'CY', given: 'CLE' }),
          ),
        ).code,
      ).toBe('AA');
    const first = mergeMessage('CY-1', { id: b, family: 'CY', given: 'CLE' }, a);
    expect(ackOf(await client.send(first))).toMatchObject({ code: 'AA' });
    const back = ackOf(await client.send(mergeMessage('CY-2', { id: a, family: 'CY', given: 'CLE' }, b)));
    expect(back).toMatchObject({ code: 'AE', errorCode: '205', errorLocation: 'MRG-1' });
    expect(back.userMessage).toMatch(/would make the merges a cycle/);
    const merges = await s.app.index.db
      .selectFrom('patient_merges')
      .select(['prior_patient_id', 'message_control_id'])
      .where('prior_patient_id', 'in', [a, b])
      .execute();
    expect(merges).toEqual([{ prior_patient_id: a, message_control_id: 'CY-1' }]);
  });

  it('files late images of a merge loop already in the index under the survivor of its newest merge, from either identifier', async () => {
    const [a, b] = [`LOOP-A-${run}`, `LOOP-B-${run}`];
    const [pkA] = await mergeLoop(a, b);
    // Stored with a warning (202): the header's demographics (Doe^Jane) differ from the patient index.
    const studies = await storeWithoutIssuer([a, b], 202);
    const filed = await s.app.index.db
      .selectFrom('studies')
      .select(['study_uid', 'patient_pk'])
      .where('study_uid', 'in', studies)
      .orderBy('study_uid')
      .execute();
    expect(filed).toEqual(
      studies
        .map((study_uid) => ({ study_uid, patient_pk: pkA }))
        .sort((x, y) => (x.study_uid < y.study_uid ? -1 : 1)),
    );
  });

  it('alerts the data steward once per loop of merges, whoever meets it first: a merge applied or refused, or ingest', async () => {
    const alerts = async (patientId: string) =>
      (await s.app.auditStore.search({ action: ['alert'], patientId, limit: 10 }))
        .filter((r) => r.detail?.alert === 'merge-loop')
        .map((r) => [r.outcome, r.detail, r.studyUid, r.objects]);
    const messageAlert = (controlId: string, applied: boolean, loop: unknown, filedUnder: unknown) => [
      'failure',
      {
        alert: 'merge-loop',
        notify: 'data-steward',
        sender: 'REGADT^MCM',
        controlId,
        messageType: 'ADT^A40',
        event: 'A40',
        applied,
        loop,
        filedUnder,
      },
      undefined,
      undefined,
    ];
    const named = (pk: number, patientId: string) => ({ pk, patientId, issuer: 'XYZ' });

    // A merge meets the loop first, and is applied: C into A, the walk from A meets A and B.
    const [a, b, c] = [`MLOOP-A-${run}`, `MLOOP-B-${run}`, `MLOOP-C-${run}`];
    const [pkA, pkB] = await mergeLoop(a, b);
    await admitted(c);
    expect(await alerts(a)).toEqual([]);
    const loopAB = [named(pkA, a), named(pkB, b)];
    const applied = mergeMessage('ML-1', { id: a, family: 'ML', given: 'OOP' }, c);
    expect(ackOf(await client.send(applied)).code).toBe('AA');
    const once = [messageAlert('ML-1', true, loopAB, named(pkA, a))];
    expect(await alerts(a)).toEqual(once);
    // Met again by a refused merge (B into A, a cycle) and by late images of both: still the one alert.
    const refused = ackOf(await client.send(mergeMessage('ML-2', { id: a, family: 'ML', given: 'OOP' }, b)));
    expect(refused).toMatchObject({ code: 'AE', errorCode: '205' });
    await storeWithoutIssuer([a, b], 202);
    expect(await alerts(a)).toEqual(once);

    // A refused merge meets the loop first: alerted after its rollback, once.
    const [d, e] = [`MLOOP-D-${run}`, `MLOOP-E-${run}`];
    const [pkD, pkE] = await mergeLoop(d, e);
    for (const controlId of ['ML-3', 'ML-4'])
      expect(
        ackOf(await client.send(mergeMessage(controlId, { id: d, family: 'ML', given: 'OOP' }, e))),
      ).toMatchObject({ code: 'AE', errorCode: '205' });
    expect(await alerts(d)).toEqual([
      messageAlert('ML-3', false, [named(pkD, d), named(pkE, e)], named(pkD, d)),
    ]);

    // Ingest meets the loop first: a late image of F is filed under F (the newest merge's survivor) and alerts.
    const [f, g, h] = [`MLOOP-F-${run}`, `MLOOP-G-${run}`, `MLOOP-H-${run}`];
    const [pkF, pkG] = await mergeLoop(f, g);
    await admitted(h);
    const [study] = await storeWithoutIssuer([f], 202);
    // The alert names whoever stored the image, as the store's own record does.
    const records = await s.app.auditStore.search({ studyUid: study!, limit: 10 });
    const stored = records.find((r) => r.action !== 'alert');
    expect(stored?.action).toBe('store');
    expect(records.find((r) => r.action === 'alert')?.actor).toEqual(stored?.actor);
    expect(await alerts(f)).toEqual([
      [
        'failure',
        {
          alert: 'merge-loop',
          notify: 'data-steward',
          found: 'ingest',
          patientId: f,
          issuer: '',
          loop: [named(pkF, f), named(pkG, g)],
          filedUnder: named(pkF, f),
        },
        study,
        { sopInstanceUids: [expect.any(String)] },
      ],
    ]);
    // Later images of either identifier, and a merge into F, meet the same loop: no further alert.
    await storeWithoutIssuer([g, f], 202);
    expect(
      ackOf(await client.send(mergeMessage('ML-5', { id: f, family: 'ML', given: 'OOP' }, h))).code,
    ).toBe('AA');
    expect(await alerts(f)).toHaveLength(1);
  });

  it('files what a merge or an order brings to a patient merged away since under the patient it was merged into', async () => {
    const [a, b, c] = [`ONTO-A-${run}`, `ONTO-B-${run}`, `ONTO-C-${run}`];
    const [, pkB] = [await admitted(a), await admitted(b)];
    await admitted(c);
    const [study] = await storeWithoutIssuer([c], 202);
    // A into B, then C into A: C's study goes where A's objects are filed, to B, not to A's empty row.
    expect(
      ackOf(await client.send(mergeMessage('ONTO-1', { id: b, family: 'ON', given: 'TO' }, a))).code,
    ).toBe('AA');
    expect(
      ackOf(await client.send(mergeMessage('ONTO-2', { id: a, family: 'ON', given: 'TO' }, c))).code,
    ).toBe('AA');
    const filed = await s.app.index.db
      .selectFrom('studies')
      .select('patient_pk')
      .where('study_uid', '=', study!)
      .executeTakeFirstOrThrow();
    expect(filed.patient_pk).toBe(pkB);
    const [merge] = await s.app.auditStore.search({ action: ['hl7-patient-merge'], patientId: a, limit: 1 });
    expect(merge?.detail).toMatchObject({ controlId: 'ONTO-2', filedUnder: { patientId: b, issuer: 'XYZ' } });
    // An order for A: its physicians' care relationships are with B, whose studies A's are.
    const order = physicianOrder('ONTO', 1);
    expect(
      ackOf(
        await client.send(
          ormMessage('ONTO-3', { id: a, authority: 'XYZ', family: 'ON', given: 'TO' }, order),
        ),
      ).code,
    ).toBe('AA');
    const related = await s.app.index.db
      .selectFrom('care_relationships as cr')
      .innerJoin('orders as o', 'o.pk', 'cr.order_pk')
      .select(['cr.patient_pk', 'o.patient_pk as order_patient_pk'])
      .where('o.placer_order_number', '=', order.placer)
      .execute();
    expect(related).toEqual([
      { patient_pk: pkB, order_patient_pk: pkB },
      { patient_pk: pkB, order_patient_pk: pkB },
    ]);
    const [recorded] = await s.app.auditStore.search({ action: ['hl7-order'], patientId: a, limit: 1 });
    expect(recorded?.detail).toMatchObject({
      controlId: 'ONTO-3',
      filedUnder: { patientId: b, issuer: 'XYZ' },
    });
  });

  it('takes an assigning authority named by universal ID alone (CX-4 &OID&ISO) as the issuer, apart from another', async () => {
    const id = `OID-${run}`;
    for (const [control, oid, family] of [
      ['OID-1', '1.2.826.0.1.1', 'FIRST'],
      ['OID-2', '1.2.826.0.1.2', 'SECOND'],
    ] as const)
      expect(
        ackOf(
          await client.send(
            adtMessage('A01', control, { id, authority: `&${oid}&ISO`, family, given: 'PAT' }),
          ),
        ).code,
      ).toBe('AA');
    // Two authorities, two patients: the second message does not rename the first authority's patient.
    expect(await patients(id)).toEqual([
      { issuer: '1.2.826.0.1.1', patient_name: 'FIRST^PAT^^^III', birth_date: '19610615' },
      { issuer: '1.2.826.0.1.2', patient_name: 'SECOND^PAT^^^III', birth_date: '19610615' },
    ]);
  });

  it('names in ERR-2 the PID-3 repetition it read (the MR one, not the first) when that identifier is refused', async () => {
    const a08 = (control: string, pid3: string) =>
      [
        `MSH|^~\\&|REGADT|MCM|CUSTOS|RADIOLOGY|20240101||ADT^A08^ADT_A01|${control}|P|2.5.1`,
        'EVN|A08|20240101',
        `PID|1||${pid3}||REP^PAT||19700101|F`,
      ].join('\r') + '\r';
    const err2 = (ack: string) => {
      const err = parseHl7(ack).segment('ERR');
      return [1, 2, 3, 4, 5].map((c) => value(err, 2, c)).join('^');
    };
    const backslash = await client.send(a08('REP-1', `123456789^^^USSSA^SS~REP\\E\\${run}^^^XYZ^MR`));
    expect(ackOf(backslash)).toMatchObject({ code: 'AE', errorCode: '102' });
    expect(err2(backslash)).toBe('PID^1^3^2^1');
    expect(ackOf(backslash).userMessage).toMatch(
      /^PID-3\[2\]\.1 \(patient identifier list\) holds a backslash/,
    );
    const empty = await client.send(a08('REP-2', '123456789^^^USSSA^SS~^^^XYZ^MR'));
    expect(ackOf(empty)).toMatchObject({ code: 'AE', errorCode: '101' });
    expect(err2(empty)).toBe('PID^1^3^2^1');
    // The MR identifier first, as most senders put it: named as before.
    const first = await client.send(a08('REP-3', `REP\\E\\${run}^^^XYZ^MR~123456789^^^USSSA^SS`));
    expect(err2(first)).toBe('PID^1^3^1^1');
    expect(ackOf(first).userMessage).toMatch(/^PID-3\.1 \(patient identifier list\) holds a backslash/);
  });

  it('refuses demographics for a patient merged away with AE/204 naming the merge, and changes no patient', async () => {
    const [a, b, c] = [`GONE-A-${run}`, `GONE-B-${run}`, `GONE-C-${run}`];
    const [pkA, pkB, pkC] = [await admitted(a), await admitted(b), await admitted(c)];
    // A into B, then B into C: A's objects are filed under C.
    expect(
      ackOf(await client.send(mergeMessage('GONE-1', { id: b, family: 'LO', given: 'OP' }, a))).code,
    ).toBe('AA');
    expect(
      ackOf(await client.send(mergeMessage('GONE-2', { id: c, family: 'LO', given: 'OP' }, b))).code,
    ).toBe('AA');
    const patients = () =>
      s.app.index.db
        .selectFrom('patients')
        .select(['pk', 'patient_name', 'birth_date', 'sex'])
        .where('pk', 'in', [pkA, pkB, pkC])
        .orderBy('pk')
        .execute();
    const before = await patients();
    for (const [n, event] of (['A08', 'A01', 'A04'] as const).entries()) {
      const controlId = `GONE-${3 + n}`;
      const ack = ackOf(
        await client.send(
          adtMessage(event, controlId, { id: a, authority: 'XYZ', family: 'LATE', given: 'NAME', sex: 'F' }),
        ),
      );
      expect(ack).toMatchObject({ code: 'AE', controlId, errorCode: '204', errorLocation: 'PID-3' });
      expect(ack.userMessage).toMatch(
        new RegExp(
          `^PID-3 ${a} \\(assigning authority XYZ\\) was merged into ${b} \\(assigning authority XYZ\\) \\(A40 of [^)]+\\) and is no longer active: send its demographics under ${c} \\(assigning authority XYZ\\), where its objects are filed; nothing was applied$`,
        ),
      );
      const refused = (
        await s.app.auditStore.search({ action: ['hl7-message'], outcome: 'failure', limit: 10 })
      ).find((r) => r.detail?.controlId === controlId);
      expect(refused?.detail).toMatchObject({
        hl7Error: 204,
        mergedAway: { patientId: a, issuer: 'XYZ' },
        mergedInto: { patientId: b, issuer: 'XYZ' },
        filedUnder: { patientId: c, issuer: 'XYZ' },
      });
    }
    // Neither A's row nor the patients it leads to took the late demographics, and nothing was recorded as applied.
    expect(await patients()).toEqual(before);
    expect(
      await s.app.auditStore.search({ action: ['hl7-patient-update'], patientId: a, limit: 10 }),
    ).toHaveLength(1);
  });

  it('tells the data steward when a merge settles a reported loop, and alerts the loop again when it forms again', async () => {
    const loopRecords = async (patientId: string) =>
      (await s.app.auditStore.search({ action: ['alert'], patientId, limit: 10 }))
        .filter((r) => String(r.detail?.alert).startsWith('merge-loop'))
        .map((r) => ({
          outcome: r.outcome,
          alert: r.detail?.alert,
          loop: r.detail?.loop,
          filedUnder: r.detail?.filedUnder,
        }));
    const named = (pk: number, patientId: string) => ({ pk, patientId, issuer: 'XYZ' });
    const [a, b, c] = [`SETTLE-A-${run}`, `SETTLE-B-${run}`, `SETTLE-C-${run}`];
    const [pkA, pkB] = await mergeLoop(a, b);
    const pkC = await admitted(c);
    const loopKey = `patients ${[pkA, pkB].sort((x, y) => x - y).join()};%`;
    const reported = async () =>
      (
        await s.app.index.db
          .selectFrom('merge_loop_alerts')
          .select('loop_key')
          .where('loop_key', 'like', loopKey)
          .execute()
      ).length;
    // A late image of A meets the loop: alerted once, and remembered as reported.
    await storeWithoutIssuer([a], 202);
    const alerted = {
      outcome: 'failure',
      alert: 'merge-loop',
      loop: [named(pkA, a), named(pkB, b)],
      filedUnder: named(pkA, a),
    };
    expect(await loopRecords(a)).toEqual([alerted]);
    expect(await reported()).toBe(1);

    // The sender merges A into C: B leads to A and A to C, the loop is settled. The steward is told, in the merge's
    // transaction, and the loop is no longer held as reported.
    expect(
      ackOf(await client.send(mergeMessage('SETTLE-1', { id: c, family: 'SE', given: 'TTLE' }, a))).code,
    ).toBe('AA');
    expect(await loopRecords(c)).toEqual([
      {
        outcome: 'success',
        alert: 'merge-loop-settled',
        loop: [named(pkA, a), named(pkB, b)],
        filedUnder: named(pkC, c),
      },
    ]);
    expect(await reported()).toBe(0);
    // Images of A and B now go to C, and meet no loop: nothing more is alerted.
    await storeWithoutIssuer([a, b], 202);
    expect(await loopRecords(a)).toEqual([alerted]);
    expect(await loopRecords(c)).toHaveLength(1);

    // The same loop forms again (the index restored to before that merge: the feed has no unmerge): the next image
    // that meets it alerts it again, as a loop the steward has not heard of since it was settled.
    await s.app.index.db.deleteFrom('patient_merges').where('message_control_id', '=', 'SETTLE-1').execute();
    await storeWithoutIssuer([b], 202);
    const again = { ...alerted, loop: [named(pkB, b), named(pkA, a)] };
    expect(await loopRecords(a)).toEqual([again, alerted]);
    expect(await reported()).toBe(1);
  });

  it('reports a loop an A47 meets (applied or refused) once, naming its patients as renamed; the rename settles nothing', async () => {
    const loopRecords = async (patientId: string) =>
      (await s.app.auditStore.search({ action: ['alert'], patientId, limit: 10 }))
        .filter((r) => String(r.detail?.alert).startsWith('merge-loop'))
        .map((r) => ({
          outcome: r.outcome,
          alert: r.detail?.alert,
          controlId: r.detail?.controlId,
          event: r.detail?.event,
          applied: r.detail?.applied,
          loop: r.detail?.loop,
          filedUnder: r.detail?.filedUnder,
        }));
    const named = (pk: number, patientId: string) => ({ pk, patientId, issuer: 'XYZ' });
    const reported = async (pks: readonly number[]) =>
      (
        await s.app.index.db
          .selectFrom('merge_loop_alerts')
          .select('loop_key')
          .where('loop_key', 'like', `patients ${[...pks].sort((x, y) => x - y).join()};%`)
          .execute()
      ).length;

    // A renamed to C: the merges still lead round pkA and pkB, and the steward hears of the loop under C's name.
    const [a, b, c] = [`RLOOP-A-${run}`, `RLOOP-B-${run}`, `RLOOP-C-${run}`];
    const [pkA, pkB] = await mergeLoop(a, b);
    expect(
      ackOf(await client.send(changeIdMessage('RL-1', { id: c, family: 'RL', given: 'OOP' }, a))).code,
    ).toBe('AA');
    const renamed = {
      outcome: 'failure',
      alert: 'merge-loop',
      controlId: 'RL-1',
      event: 'A47',
      applied: true,
      loop: [named(pkA, c), named(pkB, b)],
      filedUnder: named(pkA, c),
    };
    expect(await loopRecords(c)).toEqual([renamed]);
    expect(await reported([pkA, pkB])).toBe(1);
    // Renamed back: the same loop, not alerted again, and not settled.
    expect(
      ackOf(await client.send(changeIdMessage('RL-2', { id: a, family: 'RL', given: 'OOP' }, c))).code,
    ).toBe('AA');
    expect(await loopRecords(c)).toEqual([renamed]);
    expect(await loopRecords(a)).toEqual([]);
    expect(await reported([pkA, pkB])).toBe(1);

    // A refused A47 (PID-3 names another patient) reports the loop after its rollback, naming what is unchanged.
    const [d, e] = [`RLOOP-D-${run}`, `RLOOP-E-${run}`];
    const [pkD, pkE] = await mergeLoop(d, e);
    expect(
      ackOf(await client.send(changeIdMessage('RL-3', { id: b, family: 'RL', given: 'OOP' }, e))),
    ).toMatchObject({ code: 'AE', errorCode: '205' });
    expect(await loopRecords(d)).toEqual([
      {
        outcome: 'failure',
        alert: 'merge-loop',
        controlId: 'RL-3',
        event: 'A47',
        applied: false,
        loop: [named(pkE, e), named(pkD, d)],
        filedUnder: named(pkD, d),
      },
    ]);
    expect(await reported([pkD, pkE])).toBe(1);
  });

  it('rejects a v2.3 A46 that changes only PID-2, the external ID (MRG-4), AR/201 saying so, and changes no patient', async () => {
    // The external ID of one patient is the PID-3 of another: applied to the index, the A46 would rename the wrong one.
    const [external, renamed] = [`A46-EXT-${run}`, `A46-NEW-${run}`];
    const pk = await admitted(external);
    const a46 = (control: string, version: string, mrg: string) =>
      [
        `MSH|^~\\&|REGADT|MCM|CUSTOS|RADIOLOGY|19990105153000||ADT^A46|${control}|P|${version}`,
        'EVN|A46|199901051530',
        `PID|1|${renamed}^^^XYZ|||LO^OP||19700101|F`,
        mrg,
      ].join('\r') + '\r';
    for (const [control, version] of [
      ['A46-1', '2.3'],
      ['A46-2', '2.3.1'],
    ] as const) {
      const ack = ackOf(await client.send(a46(control, version, `MRG||||${external}^^^XYZ`)));
      expect(ack).toMatchObject({ code: 'AR', errorCode: '201', errorLocation: 'MRG-4', controlId: control });
      expect(ack.userMessage).toContain('which this archive does not keep');
    }
    // Read as v2.5.1, the same message names no MRG-1: refused as before.
    expect(ackOf(await client.send(a46('A46-3', '2.5.1', `MRG||||${external}^^^XYZ`)))).toMatchObject({
      code: 'AE',
      errorCode: '101',
      errorLocation: 'MRG-1',
    });
    const row = await s.app.index.db
      .selectFrom('patients')
      .select(['patient_id', 'patient_name'])
      .where('pk', '=', pk)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ patient_id: external, patient_name: 'LO^OP^^^III' });
    expect(
      await s.app.index.db.selectFrom('patients').select('pk').where('patient_id', '=', renamed).execute(),
    ).toEqual([]);
  });

  it('merges every patient row MRG-1 names (each repetition, each issuer) and files their late images under the survivor', async () => {
    const [survivor, a, b] = [`MULTI-S-${run}`, `MULTI-A-${run}`, `MULTI-B-${run}`];
    for (const [id, authority] of [
      [survivor, 'AUTH-S'],
      [a, 'AUTH-A'],
      [b, 'AUTH-B'],
    ] as const)
      expect(
        ackOf(await client.send(adtMessage('A01', `MU-${id}`, { id, authority, family: 'MU', given: 'LTI' })))
          .code,
      ).toBe('AA');
    // A second row under A's ID without an issuer, as a DICOM object without IssuerOfPatientID makes beside one
    // that carried it: MRG-1's A^^^AUTH-A names both rows.
    await s.app.index.db
      .insertInto('patients')
      .values({
        patient_id: a,
        issuer: '',
        patient_name: 'MU^LTI',
        patient_name_norm: 'MU^LTI',
        birth_date: '',
        sex: '',
        created_at: new Date().toISOString(),
      })
      .execute();
    const rows = await s.app.index.db
      .selectFrom('patients')
      .select(['pk', 'patient_id', 'issuer'])
      .where('patient_id', 'in', [survivor, a, b])
      .execute();
    const pkOf = (id: string, issuer: string) =>
      rows.find((r) => r.patient_id === id && r.issuer === issuer)!.pk;
    const [pkS, pkA, pkA0, pkB] = [
      pkOf(survivor, 'AUTH-S'),
      pkOf(a, 'AUTH-A'),
      pkOf(a, ''),
      pkOf(b, 'AUTH-B'),
    ];
    const filed = async (studies: string[]) =>
      (
        await s.app.index.db
          .selectFrom('studies')
          .select(['study_uid', 'patient_pk'])
          .where('study_uid', 'in', studies)
          .execute()
      )
        .sort((x, y) => studies.indexOf(x.study_uid) - studies.indexOf(y.study_uid))
        .map((r) => r.patient_pk);
    const early = await storeWithoutIssuer([a, b]);
    expect(await filed(early)).toEqual([pkA0, pkB]);

    const merge = mergeMessage(
      'MU-1',
      { id: survivor, authority: 'AUTH-S', family: 'MU', given: 'LTI' },
      a,
    ).replace(/^MRG\|[^\r]*/m, `MRG|${a}^^^AUTH-A^MR~${b}^^^AUTH-B^PI`);
    expect(ackOf(await client.send(merge))).toMatchObject({ code: 'AA' });
    expect(await filed(early)).toEqual([pkS, pkS]);
    const merges = await s.app.index.db
      .selectFrom('patient_merges')
      .select(['prior_patient_id', 'prior_issuer', 'prior_patient_pk', 'surviving_patient_pk'])
      .where('message_control_id', '=', 'MU-1')
      .orderBy('prior_patient_pk')
      .execute();
    expect(merges).toEqual(
      [
        { prior_patient_id: a, prior_issuer: 'AUTH-A', prior_patient_pk: pkA, surviving_patient_pk: pkS },
        { prior_patient_id: a, prior_issuer: 'AUTH-A', prior_patient_pk: pkA0, surviving_patient_pk: pkS },
        { prior_patient_id: b, prior_issuer: 'AUTH-B', prior_patient_pk: pkB, surviving_patient_pk: pkS },
      ].sort((x, y) => x.prior_patient_pk - y.prior_patient_pk),
    );
    const [record] = await s.app.auditStore.search({
      action: ['hl7-patient-merge'],
      patientId: survivor,
      limit: 1,
    });
    expect(record).toMatchObject({ objects: { count: 2 } });
    expect(record!.detail).toMatchObject({
      controlId: 'MU-1',
      merged: { patientId: a, issuer: 'AUTH-A' },
      mergedKnown: true,
    });
    expect(record!.detail?.priors).toEqual([
      { patientId: a, issuer: 'AUTH-A', studies: 0 },
      { patientId: a, issuer: '', sentIssuer: 'AUTH-A', studies: 1 },
      { patientId: b, issuer: 'AUTH-B', studies: 1 },
    ]);
    // Late images under either prior identifier join the survivor.
    expect(await filed(await storeWithoutIssuer([a, b]))).toEqual([pkS, pkS]);
  });

  it('refuses an A47 whose MRG-1 holds an identifier PID-3 does not keep (AE/102, naming the repetition), and applies one whose other identifiers PID-3 keeps', async () => {
    const [old, renamed, other] = [`CHG-O-${run}`, `CHG-N-${run}`, `CHG-X-${run}`];
    await admitted(old);
    await admitted(other);
    const change = (control: string, pid3: string, mrg1: string) =>
      changeIdMessage(control, { id: renamed, family: 'LO', given: 'OP' }, old)
        .replace(/^PID\|\|\|[^|]*/m, `PID|||${pid3}`)
        .replace(/^MRG\|[^\r]*/m, `MRG|${mrg1}`);
    // MRG-1's second identifier (the other patient's) has nothing to become: refused, not ignored.
    const text = await client.send(
      change('CHG-1', `${renamed}^^^XYZ^MR`, `${old}^^^XYZ^MR~${other}^^^XYZ^PI`),
    );
    const refused = ackOf(text);
    expect(refused).toMatchObject({ code: 'AE', errorCode: '102', errorLocation: 'MRG-1' });
    const erl = parseHl7(text).segment('ERR');
    expect([1, 2, 3, 4].map((c) => value(erl, 2, c))).toEqual(['MRG', '1', '1', '2']);
    expect(refused.userMessage).toMatch(
      new RegExp(
        `^MRG-1\\[2\\] \\(prior patient identifier list\\) names ${other} \\(XYZ\\), which PID-3 does not keep`,
      ),
    );
    expect(await patients(old)).toHaveLength(1);
    expect(await patients(other)).toHaveLength(1);
    expect(await patients(renamed)).toEqual([]);
    // The same identifier sent unchanged in PID-3 is one the patient keeps: the change applies.
    const kept = `${other}^^^XYZ^PI`;
    expect(
      ackOf(await client.send(change('CHG-2', `${kept}~${renamed}^^^XYZ^MR`, `${kept}~${old}^^^XYZ^MR`)))
        .code,
    ).toBe('AA');
    expect(await patients(old)).toEqual([]);
    expect(await patients(renamed)).toHaveLength(1);
    expect(await patients(other)).toHaveLength(1);
  });

  it('lets only one of two racing merges (A into B, B into A) apply, so they cannot make a loop', async () => {
    const pairs = Array.from({ length: 6 }, (_, i) => [`RACE-A${i}-${run}`, `RACE-B${i}-${run}`] as const);
    for (const [a, b] of pairs)
      for (const id of [a, b])
        expect(
          ackOf(
            await client.send(
              adtMessage('A01', `RC-${id}`, { id, authority: 'XYZ', family: 'RA', given: 'CE' }),
            ),
          ).code,
        ).toBe('AA');
    const connections = await Promise.all(
      pairs.flatMap(() => [0, 1]).map(() => MllpClient.connect(s.hl7Port!)),
    );
    try {
      const acks = await Promise.all(
        pairs.flatMap(([a, b], i) => [
          connections[2 * i]!.send(mergeMessage(`RC-${i}-1`, { id: b, family: 'RA', given: 'CE' }, a)),
          connections[2 * i + 1]!.send(mergeMessage(`RC-${i}-2`, { id: a, family: 'RA', given: 'CE' }, b)),
        ]),
      );
      for (let i = 0; i < pairs.length; i++) {
        const codes = [acks[2 * i]!, acks[2 * i + 1]!].map((t) => ackOf(t));
        expect(codes.map((c) => c.code).sort(), `pair ${i}`).toEqual(['AA', 'AE']);
        expect(codes.find((c) => c.code === 'AE')).toMatchObject({ errorCode: '205' });
      }
    } finally {
      await Promise.all(connections.map((c) => c.close()));
    }
    for (const [a, b] of pairs) {
      const merges = await s.app.index.db
        .selectFrom('patient_merges')
        .select('prior_patient_id')
        .where('prior_patient_id', 'in', [a, b])
        .execute();
      expect(merges, a).toHaveLength(1);
    }
  });

  it('echoes MSH-3..6 in the ACK (swapped) escaped once, as they were sent', async () => {
    const msg = adtMessage('A08', 'HDR-1', { id: `HDR-${run}`, family: 'HEAD', given: 'ER' }).replace(
      '|CUSTOS|RADIOLOGY|',
      '|CUS\\T\\TOS|RAD\\F\\IOLOGY|',
    );
    const text = await client.send(msg);
    const msh = text.split('\r')[0]!.split('|');
    expect(msh.slice(2, 6)).toEqual(['CUS\\T\\TOS', 'RAD\\F\\IOLOGY', 'ADT1', 'GOOD HEALTH HOSPITAL']);
    expect(ackOf(text)).toMatchObject({ code: 'AA', controlId: 'HDR-1' });
  });

  it('echoes an application or facility named with its universal ID (HD) whole in the ACK', async () => {
    const msg = adtMessage('A08', 'HDR-2', { id: `HDR-${run}`, family: 'HEAD', given: 'ER' })
      .replace('|ADT1|GOOD HEALTH HOSPITAL|', '|ADT1^1.2.840.99.1^ISO|GOOD HEALTH HOSPITAL^1.2.840.99^ISO|')
      .replace('|CUSTOS|RADIOLOGY|', '|CUSTOS^1.2.840.99.7^ISO|RADIOLOGY|');
    const text = await client.send(msg);
    const msh = text.split('\r')[0]!.split('|');
    // Until 7 Dec 2026: CUSTOS, RADIOLOGY, ADT1, GOOD HEALTH HOSPITAL.
    expect(msh.slice(2, 6)).toEqual([
      'CUSTOS^1.2.840.99.7^ISO',
      'RADIOLOGY',
      'ADT1^1.2.840.99.1^ISO',
      'GOOD HEALTH HOSPITAL^1.2.840.99^ISO',
    ]);
    expect(ackOf(text)).toMatchObject({ code: 'AA', controlId: 'HDR-2' });
  });

  it('refuses a second PID in A08 and a PID without its MRG in A40 (AE/100) and applies nothing of them', async () => {
    const first = `TWOPID-A-${run}`;
    const second = `TWOPID-B-${run}`;
    const pidOf = (m: string) => m.split('\r').find((l) => l.startsWith('PID'))!;
    const a08 = adtMessage('A08', 'TP-1', { id: first, family: 'FIRST', given: 'ANNA' });
    const extra = pidOf(adtMessage('A08', 'x', { id: second, family: 'SECOND', given: 'BERT' }));
    const ack = ackOf(await client.send(a08.replace(/(PID[^\r]*\r)/, `$1${extra}\r`)));
    expect(ack).toMatchObject({ code: 'AE', errorCode: '100', errorLocation: 'PID' });
    expect(ack.userMessage).toMatch(/holds one PID segment and this message has 2/);
    expect(await patients(first)).toEqual([]);
    expect(await patients(second)).toEqual([]);

    // A40: PID, PID, MRG. The first PID has no MRG of its own; neither merge nor update is applied.
    const merge = mergeMessage('TP-2', { id: first, family: 'FIRST', given: 'ANNA' }, second);
    const merged = ackOf(await client.send(merge.replace(/(PID[^\r]*\r)/, `$1${extra}\r`)));
    expect(merged).toMatchObject({ code: 'AE', errorCode: '100', errorLocation: 'PID' });
    expect(await patients(first)).toEqual([]);
    expect(await patients(second)).toEqual([]);
  });
});
