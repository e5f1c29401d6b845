// A peer that stops reading what Custos sends it: a C-MOVE destination that takes the association and then reads
// nothing, and a C-GET requestor that stops reading mid-object. Until 6 Dec 2026 the sub-operation's write waited
// for ever (the response timeout only started once the object was sent), so the C-MOVE or C-GET was never
// answered, its C-CANCEL was never heard, and the connection held megabytes of unsent data until the peer went.
// Now a write the peer reads nothing of for dicom.responseTimeoutMs (a destination Custos called) or
// dicom.idleTimeoutMs (an association the peer called) ends that association, and the operation is answered.
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tags } from '../src/dicom/tags.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { DimseConnection } from '../src/transports/dimse/connection.js';
import { encodeDataset } from '../src/transports/dimse/dimse-dataset.js';
import {
  ContextResult,
  decodePdu,
  encodeAssociateAc,
  encodeAssociateRq,
  PduFramer,
  type AssociateRq,
} from '../src/transports/dimse/pdu.js';
import { backends } from './support/backends.js';
import { dcmtk, storescuTo } from './support/dcmtk.js';
import { CT_IMAGE, makeInstance, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');
const GET = '1.2.840.10008.5.1.4.1.2.2.3';
const EXPLICIT = '1.2.840.10008.1.2.1';
/** dcmtk's calling and called AE titles: the registered TESTSCU calling Custos. */
const asTestScu = () => ['-aet', 'TESTSCU', '-aec', 'CUSTOS'];

/**
 * A C-MOVE destination that accepts every association (the first transfer syntax of each context) and then reads
 * nothing more; the sockets it holds, to see when Custos lets go.
 */
async function deafDestination(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    const framer = new PduFramer(1 << 20);
    socket.on('data', function associate(chunk: Buffer) {
      framer.push(chunk);
      const next = framer.next();
      if (!next) return;
      const rq = decodePdu(next.type, next.body) as AssociateRq;
      const contexts = rq.contexts.map((c) => ({
        id: c.id,
        result: ContextResult.Acceptance,
        transferSyntax: c.transferSyntaxes[0]!,
      }));
      socket.write(encodeAssociateAc(rq, contexts, 16384, []));
      // From here on nothing is read: the object's bytes fill the socket's buffers and stop there.
      socket.off('data', associate);
      socket.pause();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets };
}

/** Connections in state ESTABLISHED whose local port is `port` (/proc/net/tcp, IPv4 loopback). */
async function establishedOn(port: number): Promise<number> {
  const lines = (await readFile('/proc/net/tcp', 'utf8')).trim().split('\n').slice(1);
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return lines.filter((l) => {
    const [, local, , state] = l.trim().split(/\s+/);
    return local?.endsWith(`:${hex}`) && state === '01';
  }).length;
}

describe.each(backends())('DIMSE peers that stop reading, on %s', (backend) => {
  let s: TestServer;
  let work: string;
  const study = uid(1);
  const series = uid(2);

  beforeAll(async () => {
    s = await startTestServer(backend, {
      dicom: { idleTimeoutMs: 2000, responseTimeoutMs: 2000 },
    });
    work = await mkdtemp(join(tmpdir(), 'custos-stall-'));
    await s.app.aes.add(admin, { title: 'TESTSCU', host: '127.0.0.1', port: 104, user: 'admin' });
    // Objects far larger than what loopback sockets buffer (a few MiB), so that a peer that reads nothing stalls
    // the write of the first of them.
    const files: string[] = [];
    for (let i = 0; i < 2; i++) {
      const f = join(work, `big${i}.dcm`);
      await writeFile(
        f,
        makeInstance({
          studyUid: study,
          seriesUid: series,
          sopInstanceUid: uid(3),
          instanceNumber: i + 1,
          rows: 2048,
          columns: 4096,
        }),
      );
      files.push(f);
    }
    const stored = await storescuTo(s.dicomPort, 'TESTSCU', files);
    expect(stored.code, stored.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await s?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('answers a C-MOVE whose destination reads nothing, and lets go of the destination', async () => {
    const dest = await deafDestination();
    try {
      await s.app.aes.add(admin, { title: 'DEAFDEST', host: '127.0.0.1', port: dest.port });
      const started = Date.now();
      const r = await dcmtk('movescu', [
        '-d',
        ...asTestScu(),
        '-aem',
        'DEAFDEST',
        '127.0.0.1',
        String(s.dicomPort),
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        `StudyInstanceUID=${study}`,
      ]);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(r.stderr).toMatch(/Refused: OutOfResourcesSubOperations/);
      expect(r.stderr).toMatch(/Failed Suboperations +: 2/);
      expect(r.stderr).toContain('the peer read nothing of what was sent for 2000 ms');
      // Custos let go of the destination: read now, the destination finds the end of the connection after what
      // was in flight (until 6 Dec 2026 the association stayed open, its write waiting).
      for (const socket of dest.sockets) socket.resume();
      for (let i = 0; i < 100 && dest.sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(dest.sockets.size).toBe(0);
    } finally {
      for (const socket of dest.sockets) socket.destroy();
      dest.server.close();
    }
  }, 60_000);

  it('ends a C-GET whose requestor stops reading, and serves the next one', async () => {
    // A requestor with the SCP role for CT that sends its C-GET-RQ and then reads nothing more.
    const socket = connect(s.dicomPort!, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write(
      encodeAssociateRq(
        'CUSTOS',
        'TESTSCU',
        [
          { id: 1, abstractSyntax: GET, transferSyntaxes: [EXPLICIT] },
          { id: 3, abstractSyntax: CT_IMAGE, transferSyntaxes: [EXPLICIT] },
        ],
        16384,
        [{ sopClassUid: CT_IMAGE, scu: false, scp: true }],
      ),
    );
    const framer = new PduFramer(1 << 20);
    let ac: { type: number; body: Buffer } | undefined;
    while (!ac) {
      framer.push((await once(socket, 'data'))[0] as Buffer);
      ac = framer.next();
    }
    expect(decodePdu(ac.type, ac.body).type).toBe('associate-ac');
    socket.pause();
    const conn = new DimseConnection(socket, { command: () => undefined }, 16384);
    await conn.send(
      1,
      {
        commandField: 0x0010,
        messageId: 1,
        affectedSopClassUid: GET,
        priority: 0,
        commandDataSetType: 0,
      },
      encodeDataset(
        [
          { tag: 0x00080052, vr: 'CS', value: 'STUDY' },
          { tag: Tags.StudyInstanceUID, vr: 'UI', value: study },
        ],
        EXPLICIT,
      ),
    );
    // Custos gives up on it after the idle timeout (2 s) and closes the association: its end of the connection is
    // gone from the kernel's table (the paused requestor does not read the close itself).
    let open = await establishedOn(s.dicomPort!);
    for (let i = 0; i < 150 && open > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      open = await establishedOn(s.dicomPort!);
    }
    socket.destroy();
    expect(open).toBe(0);
    // The server goes on serving.
    const echo = await dcmtk('echoscu', [...asTestScu(), '127.0.0.1', String(s.dicomPort)]);
    expect(echo.code, echo.stderr).toBe(0);
  }, 60_000);
});
