import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from './audit-record.js';
import {
  ChainVerifier,
  chainRecords,
  checkpointMessage,
  GENESIS_HASH,
  keyIdOf,
  linkHash,
  type ChainRow,
  type Checkpoint,
} from './ledger-chain.js';
import { canonicalJson } from './canonical-json.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const keyId = keyIdOf(publicKey);

function records(n: number): Omit<AuditRecord, 'seq'>[] {
  return Array.from({ length: n }, (_, i) => ({
    v: 1 as const,
    ts: new Date(Date.UTC(2026, 10, 23, 9, 0, i)).toISOString(),
    actor: { kind: 'user' as const, id: String(i % 3), name: `user${i % 3}`, role: 'radiologist' },
    action: i % 2 ? 'view-pixels' : 'query',
    outcome: 'success' as const,
    policy: 'p1',
    patientId: `PID${i % 5}`,
    studyUid: `1.2.3.${i % 7}`,
    source: '10.0.0.1',
    node: 'n1',
  }));
}

function checkpointAt(rows: ChainRow[], seq: number): Checkpoint {
  const row = rows[seq - 1]!;
  const body = { seq, hash: row.hash, ts: '2026-11-23T10:00:00.000Z', node: 'n1', keyId };
  return { ...body, signature: sign(null, checkpointMessage(body), privateKey).toString('base64') };
}

function verify(rows: ChainRow[], db: Checkpoint[] = [], ext: Checkpoint[] = db) {
  const v = new ChainVerifier(publicKey, db, ext);
  for (const r of rows) if (!v.push(r)) break;
  return v.finish();
}

/** Re-hash rows from index i on, as an attacker with database access would to hide an edit. */
function rehashFrom(rows: ChainRow[], i: number): ChainRow[] {
  const out = rows.slice(0, i);
  let prev = i === 0 ? GENESIS_HASH : out[i - 1]!.hash;
  for (const r of rows.slice(i)) {
    const hash = linkHash(prev, r.text);
    out.push({ ...r, prevHash: prev, hash });
    prev = hash;
  }
  return out;
}

function withRecord(row: ChainRow, edit: (r: AuditRecord) => void): ChainRow {
  const rec = JSON.parse(row.text) as AuditRecord;
  edit(rec);
  return { ...row, text: canonicalJson(rec) };
}

describe('ledger chain', () => {
  const rows = chainRecords({ seq: 0, hash: GENESIS_HASH }, records(50));

  it('links each record to the one before and numbers them without gaps', () => {
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(rows[0]!.prevHash).toBe(GENESIS_HASH);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    const report = verify(rows, [checkpointAt(rows, 20), checkpointAt(rows, 50)]);
    expect(report).toMatchObject({ ok: true, records: 50, head: { seq: 50, hash: rows[49]!.hash } });
    expect(report.checkpoints.verifiedAgainstChain).toBe(4);
  });

  it('continues a chain from a head', () => {
    const more = chainRecords(rows[49]!, records(3));
    expect(more[0]!.seq).toBe(51);
    expect(verify([...rows, ...more]).ok).toBe(true);
  });

  it('names a changed field', () => {
    const t = [...rows];
    t[11] = withRecord(t[11]!, (r) => (r.actor.name = 'someone-else'));
    expect(verify(t).problem).toMatchObject({ seq: 12, kind: 'changed' });
  });

  it('names a changed field whose hash was recomputed by the link of the next record', () => {
    const t = [...rows];
    t[11] = withRecord(t[11]!, (r) => (r.outcome = 'denied'));
    t[11] = { ...t[11]!, hash: linkHash(t[11]!.prevHash, t[11]!.text) };
    expect(verify(t).problem).toMatchObject({ seq: 12, kind: 'changed' });
  });

  it('names a search column that no longer matches its record', () => {
    const t = [...rows];
    t[7] = { ...t[7]!, columns: { ...t[7]!.columns, patientId: 'OTHER' } };
    expect(verify(t).problem).toMatchObject({ seq: 8, kind: 'changed' });
    expect(verify(t).problem!.message).toMatch(/patientId/);
  });

  it('names a removed record', () => {
    const t = rows.filter((r) => r.seq !== 30);
    expect(verify(t).problem).toMatchObject({ seq: 30, kind: 'removed' });
  });

  it('names an inserted record (later records renumbered to make room)', () => {
    const forged = chainRecords(rows[19]!, records(1))[0]!; // seq 21, linked to record 20
    const shifted = rows.slice(20).map((r) => ({ ...r, seq: r.seq + 1 }));
    const t = [...rows.slice(0, 20), forged, ...shifted];
    expect(verify(t).problem).toMatchObject({ seq: 21, kind: 'inserted' });
  });

  it('names two swapped records', () => {
    const t = [...rows];
    const a = t[9]!;
    const b = t[14]!;
    t[9] = { ...b, seq: 10 };
    t[14] = { ...a, seq: 15 };
    expect(verify(t).problem).toMatchObject({ seq: 10, kind: 'reordered' });
  });

  it('names a truncated tail by the signed checkpoint beyond it', () => {
    const report = verify(rows.slice(0, 40), [checkpointAt(rows, 45)]);
    expect(report.problem).toMatchObject({ seq: 41, kind: 'removed' });
  });

  it('catches a consistent rewrite of the whole chain against the external checkpoint', () => {
    const ext = [checkpointAt(rows, 10), checkpointAt(rows, 30)];
    const t = [...rows];
    t[24] = withRecord(t[24]!, (r) => (r.policy = 'forged'));
    const rewritten = rehashFrom(t, 24);
    // Without checkpoints the rewrite is self-consistent …
    expect(verify(rewritten, [], []).ok).toBe(true);
    // … but the checkpoint signed at seq 30, kept outside the database, no longer matches.
    expect(verify(rewritten, [], ext).problem).toMatchObject({ seq: 11, kind: 'changed' });
  });

  it('names an external checkpoint file that holds none of the database checkpoints', () => {
    const db = [checkpointAt(rows, 10), checkpointAt(rows, 30)];
    expect(verify(rows, db, [db[0]!]).ok).toBe(true);
    expect(verify(rows, db, []).problem).toMatchObject({
      seq: 10,
      kind: 'checkpoint',
      message: expect.stringContaining('deleted, emptied or replaced') as string,
    });
  });

  it('refuses a checkpoint not signed by the ledger key', () => {
    const other = generateKeyPairSync('ed25519');
    const body = { seq: 10, hash: rows[9]!.hash, ts: '2026-11-23T10:00:00.000Z', node: 'n1', keyId };
    const forged = {
      ...body,
      signature: sign(null, checkpointMessage(body), other.privateKey).toString('base64'),
    };
    expect(verify(rows, [forged], []).problem).toMatchObject({ seq: 10, kind: 'checkpoint' });
  });

  it('verifies only what follows a proven point when given one', () => {
    const v = new ChainVerifier(publicKey, [], [], rows[29]!);
    for (const r of rows.slice(30)) expect(v.push(r)).toBe(true);
    expect(v.finish()).toMatchObject({ ok: true, records: 50 });
  });
});
