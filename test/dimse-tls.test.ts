// Issue 3: DICOM TLS (PS3.15 Annex B) with dcmtk's +tls, client certificates bound to AE entries.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateSha256 } from '../src/app/certificate.js';
import { systemPrincipal } from '../src/services/auth-service.js';
import { backends } from './support/backends.js';
import { dcmtk } from './support/dcmtk.js';
import { makeInstance, uid } from './support/fixtures.js';
import { startTestServer, type TestServer } from './support/test-server.js';

const admin = systemPrincipal('test');

/** A throwaway CA, a server certificate for 127.0.0.1 and two client certificates, made with openssl. */
function makePki(dir: string) {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=Custos Test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  );
  const leaf = (name: string, ext: string) => {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    );
    execFileSync('sh', ['-c', `printf '%s\\n' '${ext}' > ${name}.ext`], { cwd: dir });
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  };
  leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  leaf('client', 'extendedKeyUsage=clientAuth');
  leaf('rogue', 'extendedKeyUsage=clientAuth');
}

for (const backend of backends()) {
  describe(`DICOM TLS with dcmtk (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    let port: string;
    let tls: string[];
    const study = uid(1);
    const series = uid(2);
    let file: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custos-tls-'));
      makePki(dir);
      s = await startTestServer(backend, {
        dicom: {
          port: null,
          tls: {
            port: 0,
            cert: join(dir, 'server.crt'),
            key: join(dir, 'server.key'),
            ca: join(dir, 'ca.crt'),
            requireClientCert: true,
          },
        },
      });
      port = String(s.dicomTlsPort);
      tls = ['+tls', join(dir, 'client.key'), join(dir, 'client.crt'), '+cf', join(dir, 'ca.crt')];
      await s.app.aes.add(admin, {
        title: 'TLSSCU',
        host: '127.0.0.1',
        port: 104,
        user: 'admin',
        certSha256: await certificateSha256(join(dir, 'client.crt')),
      });
      file = join(dir, 'in.dcm');
      await writeFile(
        file,
        makeInstance({ studyUid: study, seriesUid: series, sopInstanceUid: uid(3), patientId: 'PID-TLS' }),
      );
    });

    afterAll(async () => {
      await s.stop();
      await rm(dir, { recursive: true, force: true });
    });

    const scu = ['-aet', 'TLSSCU', '-aec', 'CUSTOS'];

    it('switches the plain port off and listens with TLS only', () => {
      expect(s.dicomPort).toBeNull();
      expect(s.dicomTlsPort).toBeGreaterThan(0);
    });

    it('answers echoscu, storescu and findscu over TLS with the registered client certificate', async () => {
      let r = await dcmtk('echoscu', [...tls, ...scu, '127.0.0.1', port]);
      expect(r.code, r.stderr).toBe(0);
      r = await dcmtk('storescu', [...tls, ...scu, '127.0.0.1', port, file]);
      expect(r.code, r.stderr).toBe(0);
      r = await dcmtk('findscu', [
        '-v',
        ...tls,
        ...scu,
        '-S',
        '127.0.0.1',
        port,
        '-k',
        'QueryRetrieveLevel=STUDY',
        '-k',
        'PatientID=PID-TLS',
        '-k',
        'StudyInstanceUID',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(study);
      // dcmtk 3.6.7's getscu and movescu have no TLS options; C-GET and C-MOVE run the same code over TLS.
    });

    it('rejects a CA-signed client certificate other than the one registered for the AE, and audits it', async () => {
      const rogue = ['+tls', join(dir, 'rogue.key'), join(dir, 'rogue.crt'), '+cf', join(dir, 'ca.crt')];
      const r = await dcmtk('echoscu', [...rogue, ...scu, '127.0.0.1', port]);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/Calling AE Title Not Recognized/i);
      const rows = await s.app.index.db
        .selectFrom('audit_ledger')
        .select(['record'])
        .where('action', '=', 'dicom-associate')
        .where('outcome', '=', 'denied')
        .where('actor', '=', 'TLSSCU')
        .execute();
      expect(rows.some((x) => x.record.includes('certificate'))).toBe(true);
    });

    it('refuses a TLS handshake without a client certificate', async () => {
      const r = await dcmtk('echoscu', ['+tla', '+cf', join(dir, 'ca.crt'), ...scu, '127.0.0.1', port]);
      expect(r.code).not.toBe(0);
    });

    it('refuses TLS 1.1', async () => {
      const err = await new Promise<Error | undefined>((resolve) => {
        const c = tlsConnect({
          host: '127.0.0.1',
          port: Number(port),
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          rejectUnauthorized: false,
        });
        c.once('secureConnect', () => {
          c.destroy();
          resolve(undefined);
        });
        c.once('error', (e) => resolve(e));
      });
      expect(err).toBeDefined();
    });
  });
}
