// The SQLite index file deleted while the server runs (an operator's `rm`, a clean-up script): the server keeps
// writing to the file it has open, and everything written then is lost when it stops. Stores are refused as on a
// volume that refuses writes (A700, FailureReason A700, 503), the operator's log says why, and health says so.
// Until 6 Dec 2026 every store was acknowledged, and lost at the next start.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance, uid } from './support/fixtures.js';
import { postStow, startTestServer, type TestServer } from './support/test-server.js';

describe('the SQLite index file deleted under a running server', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer('sqlite');
  });
  afterAll(() => s?.stop());

  it('refuses stores with A700, names the deleted file in the log, and health says the index volume refuses writes', async () => {
    const study = uid(1);
    const series = uid(2);
    const one = () => makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3) });
    expect((await postStow(s, [one()])).status).toBe(200);
    for (const f of ['index.sqlite', 'index.sqlite-wal', 'index.sqlite-shm'])
      await rm(join(s.dataDir, f), { force: true });
    // Past the 250 ms the last measurement is used for.
    await new Promise((r) => setTimeout(r, 300));
    const res = await postStow(s, [one()], { Accept: 'application/dicom+json' });
    expect(res.status).not.toBe(200);
    const text = await res.text();
    expect(res.headers.get('warning') ?? text).toContain('was deleted while the server ran');
    if (res.headers.get('content-type')?.includes('dicom+json')) expect(text).toContain('"Value":[42752]');
    else expect(res.status).toBe(503);
    const health = (await (await fetch(`${s.url}/api/health`)).json()) as Record<string, unknown>;
    expect(health.storage).toBe('unwritable');
    expect(s.notices.some((l) => l.includes('index.sqlite was deleted while the server ran'))).toBe(true);
  });
});
