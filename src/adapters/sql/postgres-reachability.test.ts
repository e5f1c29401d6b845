import { describe, expect, it } from 'vitest';
import { PostgresReachability } from './postgres-reachability.js';

const until = async (cond: () => boolean, ms = 2000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
};

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

/** A probe whose answers the test sets: 'up' resolves, 'down' rejects, 'hang' never settles. */
function server(initial: 'up' | 'down' | 'hang') {
  const s = {
    state: initial,
    probes: 0,
    probe: async () => {
      s.probes++;
      if (s.state === 'down') throw refused;
      if (s.state === 'hang') return new Promise(() => {});
    },
  };
  return s;
}

describe('PostgresReachability', () => {
  it('tells a loss once however often it is reported, probes until the server answers, then tells that once', async () => {
    const db = server('down');
    const notices: string[] = [];
    const r = new PostgresReachability(db.probe, (l) => notices.push(l), { firstMs: 1, everyMs: 5 });
    const shutdown = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
    });
    r.lost(shutdown);
    r.lost(shutdown);
    r.lost(refused);
    expect(r.reachable).toBe(false);
    await until(() => db.probes >= 3);
    expect(notices).toEqual([
      'the PostgreSQL index cannot be reached (57P01: terminating connection due to administrator command); requests that need it are answered 503 until it answers again',
    ]);
    db.state = 'up';
    await until(() => notices.length === 2);
    expect(notices[1]).toMatch(/^the PostgreSQL index answers again \(it could not be reached for \d+ s\)$/);
    expect(r.reachable).toBe(true);
    const probes = db.probes;
    await new Promise((res) => setTimeout(res, 30));
    expect(db.probes).toBe(probes);
    r.close();
  });

  it('answers health checks with one probe per reuse period, and a failed check is a loss like any other', async () => {
    let now = 0;
    const db = server('up');
    const notices: string[] = [];
    const r = new PostgresReachability(db.probe, (l) => notices.push(l), {
      reuseMs: 1000,
      firstMs: 60_000,
      now: () => now,
    });
    expect(await Promise.all([r.check(), r.check()])).toEqual([true, true]);
    now = 999;
    expect(await r.check()).toBe(true);
    expect(db.probes).toBe(1);
    db.state = 'down';
    now = 1000;
    expect(await r.check()).toBe(false);
    expect(db.probes).toBe(2);
    expect(r.reachable).toBe(false);
    expect(notices).toEqual([
      expect.stringMatching(/^the PostgreSQL index cannot be reached \(ECONNREFUSED: /),
    ]);
    db.state = 'up';
    now = 4600;
    expect(await r.check()).toBe(true);
    expect(notices[1]).toBe('the PostgreSQL index answers again (it could not be reached for 4 s)');
    // A loss reported meanwhile is not hidden by the answer of the check before it: the next check probes again.
    now = 5000;
    r.lost(refused);
    expect(await r.check()).toBe(true);
    expect(notices).toHaveLength(4);
    r.close();
  });

  it('takes a probe that does not answer in time for a failure', async () => {
    const db = server('hang');
    const notices: string[] = [];
    const r = new PostgresReachability(db.probe, (l) => notices.push(l), { timeoutMs: 20, firstMs: 60_000 });
    expect(await r.check()).toBe(false);
    expect(notices).toEqual([expect.stringMatching(/cannot be reached \(no code: no answer within 20 ms\)/)]);
    r.close();
  });

  it('stops probing once closed', async () => {
    const db = server('down');
    const r = new PostgresReachability(db.probe, () => {}, { firstMs: 1, everyMs: 2 });
    r.lost(refused);
    await until(() => db.probes >= 1);
    r.close();
    const probes = db.probes;
    await new Promise((res) => setTimeout(res, 30));
    expect(db.probes).toBe(probes);
  });
});
