// dicom.maxAssociations and dicom.maxAssociationsPerAe: an association over either is rejected as transient, local
// limit exceeded (PS3.8 Table 9-21: result 2, source 3, reason 2, as dcmtk's dcmqrscp does), and the refusal is in
// the ledger. Until 6 Dec 2026 there was no limit: any number of associations were taken, from one AE title alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrincipal } from '../src/services/auth-service.js';
import { encodeReleaseRq } from '../src/transports/dimse/pdu.js';
import { Sop } from '../src/transports/dimse/sop-classes.js';
import { backends } from './support/backends.js';
import { dcmtk } from './support/dcmtk.js';
import { rawAssociated, type RawPeer } from './support/raw-scu.js';
import { startTestServer, stopThenCleanUp, type TestServer } from './support/test-server.js';

const VERIFICATION = [{ abstractSyntax: Sop.Verification, transferSyntaxes: ['1.2.840.10008.1.2'] }];

describe.each(backends())('DIMSE association limits, on %s', (backend) => {
  let s: TestServer;
  const open: RawPeer[] = [];

  beforeAll(async () => {
    s = await startTestServer(backend, { dicom: { maxAssociations: 3, maxAssociationsPerAe: 2 } });
    for (const title of ['LIMITA', 'LIMITB', 'LIMITC'])
      await s.app.aes.add(systemPrincipal('test'), { title, host: '127.0.0.1', port: 104, user: 'admin' });
  });
  afterAll(async () => {
    for (const p of open) p.socket.destroy();
    expect(await stopThenCleanUp(s)).toEqual([]);
  });

  const echo = (aet: string) =>
    dcmtk('echoscu', ['-v', '-aet', aet, '-aec', 'CUSTOS', '127.0.0.1', String(s.dicomPort)]);
  const refusals = async (aet: string) =>
    (
      await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['outcome', 'record'])
        .where('action', '=', 'dicom-associate')
        .where('actor', '=', aet)
        .where('outcome', '=', 'denied')
        .execute()
    ).map((r) => JSON.parse(r.record) as { policy: string; detail: { reason: string } });

  it('rejects an AE title over its limit and any AE over the total, transient, and records each refusal', async () => {
    open.push(await rawAssociated(s.dicomPort!, 'LIMITA', VERIFICATION));
    open.push(await rawAssociated(s.dicomPort!, 'LIMITA', VERIFICATION));
    const third = await echo('LIMITA');
    expect(third.code).not.toBe(0);
    expect(third.stderr).toMatch(/Association Rejected/);
    expect(third.stderr).toMatch(/Result: Rejected Transient/);
    expect(third.stderr).toMatch(/Source: Service Provider \(Presentation Related\)/);
    expect(third.stderr).toMatch(/Reason: Local Limit Exceeded/);
    expect(await refusals('LIMITA')).toEqual([
      expect.objectContaining({
        policy: 'builtin:dicom-limits',
        detail: { reason: "'LIMITA' has 2 associations open, the most dicom.maxAssociationsPerAe allows" },
      }),
    ]);
    // Another AE title has its own count, up to the total of 3.
    open.push(await rawAssociated(s.dicomPort!, 'LIMITB', VERIFICATION));
    const fourth = await echo('LIMITC');
    expect(fourth.stderr).toMatch(/Reason: Local Limit Exceeded/);
    expect(await refusals('LIMITC')).toEqual([
      expect.objectContaining({
        policy: 'builtin:dicom-limits',
        detail: { reason: '3 associations are open, the most dicom.maxAssociations allows' },
      }),
    ]);
  });

  it('gives the slot back when an association is released', async () => {
    const first = open.shift()!;
    first.socket.write(encodeReleaseRq());
    expect((await first.next())?.type).toBe(0x06);
    first.socket.destroy();
    const again = await echo('LIMITA');
    expect(again.code, again.stderr).toBe(0);
    expect(await refusals('LIMITA')).toHaveLength(1);
  });
});
