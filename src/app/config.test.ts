import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

/** A directory of this file's own, removed when its tests are done (until 7 Dec 2026 each run left four in /tmp). */
const made: string[] = [];
function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const cwd = scratchDir('custos-config-');

describe('loadConfig', () => {
  it('leaves HL7 off by default and reads hl7.* from CUSTOS_HL7_* variables', () => {
    expect(loadConfig({ env: {}, cwd }).hl7).toMatchObject({
      port: null,
      senders: [],
      maxMessageBytes: 1048576,
    });
    const c = loadConfig({
      env: {
        CUSTOS_HL7_PORT: '2575',
        CUSTOS_HL7_SENDERS: 'ADT1^GOOD HEALTH HOSPITAL, RIS^HOSP',
        CUSTOS_HL7_IDLE_TIMEOUT_SECONDS: '60',
        CUSTOS_HL7_RESEND_WINDOW_DAYS: '2',
        CUSTOS_HL7_TLS_PORT: '2576',
        CUSTOS_HL7_TLS_CERT: 'tls/cert.pem',
        CUSTOS_HL7_TLS_KEY: 'tls/key.pem',
        CUSTOS_HL7_TLS_CA: 'tls/ca.pem',
        CUSTOS_HL7_TLS_REQUIRE_CLIENT_CERT: 'true',
      },
      cwd,
    });
    expect(c.hl7).toMatchObject({
      port: 2575,
      senders: ['ADT1^GOOD HEALTH HOSPITAL', 'RIS^HOSP'],
      idleTimeoutSeconds: 60,
      resendWindowDays: 2,
      tls: {
        port: 2576,
        cert: join(cwd, 'tls/cert.pem'),
        key: join(cwd, 'tls/key.pem'),
        ca: join(cwd, 'tls/ca.pem'),
        requireClientCert: true,
      },
    });
    expect(() => loadConfig({ env: { CUSTOS_HL7_SENDERS: 'NOFACILITY' }, cwd })).toThrow(/hl7.senders.0/);
  });
  it('reads dicom.tls.crl and hl7.tls.crl from CUSTOS_*_TLS_CRL, relative to the working directory, and wants a ca with them', () => {
    const tls = (prefix: string, ca: boolean) => ({
      [`${prefix}_PORT`]: '0',
      [`${prefix}_CERT`]: 'tls/cert.pem',
      [`${prefix}_KEY`]: 'tls/key.pem',
      ...(ca ? { [`${prefix}_CA`]: 'tls/ca.pem' } : {}),
      [`${prefix}_CRL`]: 'tls/ca.crl',
    });
    const c = loadConfig({ env: { ...tls('CUSTOS_DICOM_TLS', true), ...tls('CUSTOS_HL7_TLS', true) }, cwd });
    expect(c.dicom.tls?.crl).toBe(join(cwd, 'tls/ca.crl'));
    expect(c.hl7.tls?.crl).toBe(join(cwd, 'tls/ca.crl'));
    expect(() => loadConfig({ env: tls('CUSTOS_DICOM_TLS', false), cwd })).toThrow(
      /configuration dicom\.tls\.ca: is required with crl/,
    );
    expect(() => loadConfig({ env: tls('CUSTOS_HL7_TLS', false), cwd })).toThrow(
      /configuration hl7\.tls\.ca: is required with crl/,
    );
  });
  it('defaults to ./custos-data, port 8080 and an embedded index', () => {
    const c = loadConfig({ env: {}, cwd });
    expect(c.dataDir).toBe(join(cwd, 'custos-data'));
    expect(c.http.port).toBe(8080);
    expect(c.database.url).toBeUndefined();
    expect(c.keyFile).toBe(join(cwd, 'custos-data', 'keys', 'kek.json'));
  });
  it('layers file < environment < flags', () => {
    const file = join(cwd, 'c.json');
    writeFileSync(file, JSON.stringify({ http: { port: 9000, host: '127.0.0.1' } }));
    expect(loadConfig({ env: {}, cwd, configFile: file }).http).toEqual({
      port: 9000,
      host: '127.0.0.1',
      workers: 1,
      corsOrigins: [],
      inactivityTimeoutMs: 120_000,
    });
    expect(loadConfig({ env: { CUSTOS_HTTP_PORT: '9100' }, cwd, configFile: file }).http.port).toBe(9100);
    expect(
      loadConfig({ env: { CUSTOS_HTTP_INACTIVITY_TIMEOUT_MS: '30000' }, cwd, configFile: file }).http
        .inactivityTimeoutMs,
    ).toBe(30_000);
    expect(
      loadConfig({
        env: { CUSTOS_HTTP_PORT: '9100' },
        cwd,
        configFile: file,
        flags: { http: { port: 9200 } },
      }).http.port,
    ).toBe(9200);
  });
  it('names the bad key: unknown file setting, bad value, unknown or malformed variable', () => {
    const file = join(cwd, 'bad.json');
    writeFileSync(file, JSON.stringify({ http: { prot: 1 } }));
    expect(() => loadConfig({ env: {}, cwd, configFile: file })).toThrow(
      /http\.prot: is not a known setting/,
    );
    writeFileSync(file, JSON.stringify({ http: { port: 70000 } }));
    expect(() => loadConfig({ env: {}, cwd, configFile: file })).toThrow(/http\.port/);
    expect(() => loadConfig({ env: { CUSTOS_HTTP_PORTT: '1' }, cwd })).toThrow(
      /CUSTOS_HTTP_PORTT: unknown environment variable/,
    );
    expect(() => loadConfig({ env: { CUSTOS_HTTP_PORT: 'eighty' }, cwd })).toThrow(
      /CUSTOS_HTTP_PORT: must be a non-negative integer/,
    );
    expect(() => loadConfig({ env: { CUSTOS_DATABASE_URL: 'mysql://x' }, cwd })).toThrow(
      /CUSTOS_DATABASE_URL \(database\.url\): must be a postgres/,
    );
  });
  it('configures the audit record repository (syslog) from the file or CUSTOS_AUDIT_SYSLOG_*, with per-transport ports', () => {
    expect(loadConfig({ env: {}, cwd }).audit.syslog).toBeUndefined();
    expect(
      loadConfig({
        env: {
          CUSTOS_AUDIT_SYSLOG_TRANSPORT: 'tls',
          CUSTOS_AUDIT_SYSLOG_HOST: 'arr.example.org',
          CUSTOS_AUDIT_SYSLOG_CA: 'pki/ca.pem',
          CUSTOS_AUDIT_SYSLOG_CERT: 'pki/me.pem',
          CUSTOS_AUDIT_SYSLOG_KEY: 'pki/me.key',
        },
        cwd,
      }).audit.syslog,
    ).toEqual({
      transport: 'tls',
      host: 'arr.example.org',
      port: 6514,
      ca: join(cwd, 'pki', 'ca.pem'),
      cert: join(cwd, 'pki', 'me.pem'),
      key: join(cwd, 'pki', 'me.key'),
    });
    const file = join(cwd, 'syslog.json');
    writeFileSync(file, JSON.stringify({ audit: { syslog: { transport: 'udp', host: '10.0.0.5' } } }));
    expect(
      loadConfig({ env: { CUSTOS_AUDIT_SYSLOG_PORT: '1514' }, cwd, configFile: file }).audit.syslog,
    ).toEqual({
      transport: 'udp',
      host: '10.0.0.5',
      port: 1514,
    });
    expect(loadConfig({ env: {}, cwd, configFile: file }).audit.syslog!.port).toBe(514);
    expect(() => loadConfig({ env: { CUSTOS_AUDIT_SYSLOG_HOST: 'h' }, cwd })).toThrow(
      /audit\.syslog\.transport/,
    );
    expect(() =>
      loadConfig({ env: { CUSTOS_AUDIT_SYSLOG_TRANSPORT: 'tcp', CUSTOS_AUDIT_SYSLOG_HOST: 'h' }, cwd }),
    ).toThrow(/audit\.syslog\.transport/);
    expect(() =>
      loadConfig({
        env: { CUSTOS_AUDIT_SYSLOG_CA: 'ca.pem', CUSTOS_AUDIT_SYSLOG_HOST: 'h' },
        cwd,
        configFile: file,
      }),
    ).toThrow(/CUSTOS_AUDIT_SYSLOG_CA \(audit\.syslog\.ca\): applies to transport tls only/);
    expect(() =>
      loadConfig({
        env: {
          CUSTOS_AUDIT_SYSLOG_TRANSPORT: 'tls',
          CUSTOS_AUDIT_SYSLOG_HOST: 'h',
          CUSTOS_AUDIT_SYSLOG_CERT: 'c',
        },
        cwd,
      }),
    ).toThrow(/audit\.syslog\.key: required with cert/);
  });
  it('reads http.publicUrl from CUSTOS_HTTP_PUBLIC_URL and names a value that is not an http(s) URL', () => {
    expect(loadConfig({ env: {}, cwd }).http.publicUrl).toBeUndefined();
    for (const good of ['https://pacs.example.org', 'https://example.org:8443/pacs/', 'http://10.0.0.5:8080'])
      expect(loadConfig({ env: { CUSTOS_HTTP_PUBLIC_URL: good }, cwd }).http.publicUrl).toBe(good);
    for (const bad of [
      'pacs.example.org',
      'ftp://pacs.example.org',
      'https://pacs.example.org/?x=1',
      'https://pacs.example.org/#top',
      'https://user:pw@pacs.example.org',
    ])
      expect(() => loadConfig({ env: { CUSTOS_HTTP_PUBLIC_URL: bad }, cwd }), bad).toThrow(
        /http\.publicUrl.*absolute http:\/\/ or https:\/\/ URL/,
      );
  });
  it('reads http.corsOrigins from CUSTOS_HTTP_CORS_ORIGINS and names a value that is not an origin', () => {
    expect(loadConfig({ env: {}, cwd }).http.corsOrigins).toEqual([]);
    expect(
      loadConfig({
        env: { CUSTOS_HTTP_CORS_ORIGINS: 'https://viewer.example.org,http://10.0.0.5:3000' },
        cwd,
      }).http.corsOrigins,
    ).toEqual(['https://viewer.example.org', 'http://10.0.0.5:3000']);
    expect(loadConfig({ env: { CUSTOS_HTTP_CORS_ORIGINS: '*' }, cwd }).http.corsOrigins).toEqual(['*']);
    // What a browser sends in Origin has no path, not even '/': a value with one would never match.
    for (const bad of ['https://viewer.example.org/', 'viewer.example.org', 'ftp://viewer.example.org'])
      expect(() => loadConfig({ env: { CUSTOS_HTTP_CORS_ORIGINS: bad }, cwd })).toThrow(
        /http\.corsOrigins\.0.*must be an origin/,
      );
  });

  it("resolves a relative path in the config file against the file's directory, one from the environment against the working directory", () => {
    const dir = scratchDir('custos-config-rel-');
    writeFileSync(
      join(dir, 'custos.json'),
      JSON.stringify({
        keyFile: 'secrets/kek.json',
        audit: { checkpointFile: 'ext/checkpoints.jsonl' },
        dicom: { tls: { port: 2762, cert: 'tls/s.crt', key: '/etc/custos/s.key' } },
      }),
    );
    for (const from of [cwd, join(cwd, 'elsewhere')]) {
      const c = loadConfig({ env: { CUSTOS_DATA_DIR: dir }, cwd: from });
      expect(c.keyFile).toBe(join(dir, 'secrets', 'kek.json'));
      expect(c.audit.checkpointFile).toBe(join(dir, 'ext', 'checkpoints.jsonl'));
      expect(c.dicom.tls).toMatchObject({ cert: join(dir, 'tls', 's.crt'), key: '/etc/custos/s.key' });
    }
    const env = loadConfig({ env: { CUSTOS_DATA_DIR: dir, CUSTOS_KEY_FILE: 'k.json' }, cwd });
    expect(env.keyFile).toBe(join(cwd, 'k.json'));
  });
  it('refuses a config file that is not one JSON object, naming it', () => {
    for (const text of ['[]', 'null', '"hello"', '42']) {
      const file = join(cwd, 'not-object.json');
      writeFileSync(file, text);
      expect(() => loadConfig({ env: {}, cwd, configFile: file }), text).toThrow(
        /not-object\.json: the config file must hold one JSON object of settings/,
      );
    }
  });
  it('takes a fractional value from the environment wherever the file takes one', () => {
    // Until 6 Dec 2026 these variables were read as integers, and 0.5 was refused.
    const c = loadConfig({
      env: { CUSTOS_AUTH_SESSION_ABSOLUTE_HOURS: '0.5', CUSTOS_FIXITY_INTERVAL_DAYS: '0.25' },
      cwd,
    });
    expect(c.auth.session.absoluteHours).toBe(0.5);
    expect(c.fixity.intervalDays).toBe(0.25);
    expect(() => loadConfig({ env: { CUSTOS_FIXITY_INTERVAL_DAYS: '1,5' }, cwd })).toThrow(
      "configuration CUSTOS_FIXITY_INTERVAL_DAYS: must be a non-negative number, got '1,5'",
    );
    expect(() => loadConfig({ env: { CUSTOS_HTTP_PORT: '80.5' }, cwd })).toThrow(
      /CUSTOS_HTTP_PORT: must be a non-negative integer/,
    );
  });

  it('names the environment variable a refused value came from, with its setting', () => {
    expect(() => loadConfig({ env: { CUSTOS_VALIDATION_DEFAULT: 'strictest' }, cwd })).toThrow(
      /^configuration CUSTOS_VALIDATION_DEFAULT \(validation\.default\): Invalid enum value/,
    );
    expect(() => loadConfig({ env: { CUSTOS_AUTH_SESSION_ABSOLUTE_HOURS: '0.05' }, cwd })).toThrow(
      /^configuration CUSTOS_AUTH_SESSION_ABSOLUTE_HOURS \(auth\.session\.absoluteHours\): /,
    );
    expect(() => loadConfig({ env: { CUSTOS_HL7_SENDERS: 'NOFACILITY' }, cwd })).toThrow(
      /^configuration CUSTOS_HL7_SENDERS \(hl7\.senders\.0\): must be 'APPLICATION\^FACILITY'/,
    );
    // The same key from the file, or from a flag over the variable, is named as the key alone.
    const file = join(cwd, 'validation.json');
    writeFileSync(file, JSON.stringify({ validation: { default: 'strictest' } }));
    expect(() => loadConfig({ env: {}, cwd, configFile: file })).toThrow(
      /^configuration validation\.default: Invalid enum value/,
    );
    expect(() =>
      loadConfig({ env: { CUSTOS_HTTP_PORT: '8081' }, cwd, flags: { http: { port: 70000 } } }),
    ).toThrow(/^configuration http\.port: /);
  });

  it('gives the rule for an administrator name it refuses', () => {
    // Until 6 Dec 2026 the message was only "Invalid".
    expect(() => loadConfig({ env: { CUSTOS_ADMIN_USERNAME: 'Admin' }, cwd })).toThrow(
      "configuration CUSTOS_ADMIN_USERNAME (admin.username): must be 1-64 characters: a lowercase letter, then lowercase letters, digits, '.', '_' or '-' (e.g. 'admin')",
    );
    expect(loadConfig({ env: { CUSTOS_ADMIN_USERNAME: 'it.admin-2' }, cwd }).admin.username).toBe(
      'it.admin-2',
    );
  });

  it('reads a config file saved with a UTF-8 byte order mark', () => {
    // Until 6 Dec 2026: "Unexpected token '\uFEFF'".
    const file = join(cwd, 'bom.json');
    writeFileSync(file, '\uFEFF' + JSON.stringify({ http: { port: 9300 } }));
    expect(loadConfig({ env: {}, cwd, configFile: file }).http.port).toBe(9300);
  });

  it('refuses two listeners on one port of overlapping hosts, naming both keys; port 0 and distinct hosts pass', () => {
    expect(() => loadConfig({ env: { CUSTOS_DICOM_PORT: '8080' }, cwd })).toThrow(
      'configuration dicom.port: port 8080 is also http.port (hosts 0.0.0.0 and 0.0.0.0 overlap)',
    );
    expect(() =>
      loadConfig({
        env: { CUSTOS_HL7_PORT: '2575', CUSTOS_HL7_HOST: '127.0.0.1', CUSTOS_DICOM_PORT: '2575' },
        cwd,
      }),
    ).toThrow('configuration hl7.port: port 2575 is also dicom.port (hosts 0.0.0.0 and 127.0.0.1 overlap)');
    expect(() =>
      loadConfig({
        env: {
          CUSTOS_DICOM_TLS_PORT: '11112',
          CUSTOS_DICOM_TLS_CERT: 'c.pem',
          CUSTOS_DICOM_TLS_KEY: 'k.pem',
        },
        cwd,
      }),
    ).toThrow(/configuration dicom\.tls\.port: port 11112 is also dicom\.port/);
    expect(
      loadConfig({ env: { CUSTOS_HTTP_PORT: '0', CUSTOS_DICOM_PORT: '0', CUSTOS_HL7_PORT: '0' }, cwd }).http
        .port,
    ).toBe(0);
    expect(
      loadConfig({
        env: {
          CUSTOS_HTTP_HOST: '127.0.0.1',
          CUSTOS_DICOM_HOST: '127.0.0.2',
          CUSTOS_DICOM_PORT: '8080',
        },
        cwd,
      }).dicom.port,
    ).toBe(8080);
  });

  it('reads <dataDir>/custos.json when present', () => {
    const dir = scratchDir('custos-config-data-');
    writeFileSync(join(dir, 'custos.json'), JSON.stringify({ http: { port: 8181 } }));
    expect(loadConfig({ env: { CUSTOS_DATA_DIR: dir }, cwd }).http.port).toBe(8181);
  });
  it('dicom: 100 associations at once and 20 per calling AE title by default, from the file or CUSTOS_DICOM_MAX_ASSOCIATIONS*', () => {
    const c = loadConfig({ env: {}, cwd });
    expect([c.dicom.maxAssociations, c.dicom.maxAssociationsPerAe]).toEqual([100, 20]);
    const file = join(scratchDir('custos-config-'), 'custos.json');
    writeFileSync(file, JSON.stringify({ dicom: { maxAssociations: 40, maxAssociationsPerAe: 4 } }));
    const f = loadConfig({ env: {}, cwd, configFile: file });
    expect([f.dicom.maxAssociations, f.dicom.maxAssociationsPerAe]).toEqual([40, 4]);
    const e = loadConfig({
      env: { CUSTOS_DICOM_MAX_ASSOCIATIONS: '250', CUSTOS_DICOM_MAX_ASSOCIATIONS_PER_AE: '8' },
      cwd,
    });
    expect([e.dicom.maxAssociations, e.dicom.maxAssociationsPerAe]).toEqual([250, 8]);
    expect(() => loadConfig({ env: { CUSTOS_DICOM_MAX_ASSOCIATIONS_PER_AE: '0' }, cwd })).toThrow(
      /dicom\.maxAssociationsPerAe/,
    );
  });
  it('dicom: port 11112 and AE CUSTOS by default, CUSTOS_DICOM_PORT=off switches the plain port off, TLS paths resolve', () => {
    const c = loadConfig({ env: {}, cwd });
    expect(c.dicom.port).toBe(11112);
    expect(c.dicom.aeTitle).toBe('CUSTOS');
    expect(c.dicom.storeAck).toBe('committed');
    expect(c.dicom.tls).toBeUndefined();
    const off = loadConfig({
      env: {
        CUSTOS_DICOM_PORT: 'off',
        CUSTOS_DICOM_TLS_PORT: '2762',
        CUSTOS_DICOM_TLS_CERT: 's.crt',
        CUSTOS_DICOM_TLS_KEY: 's.key',
      },
      cwd,
    });
    expect(off.dicom.port).toBeNull();
    expect(off.dicom.tls).toEqual({
      port: 2762,
      cert: join(cwd, 's.crt'),
      key: join(cwd, 's.key'),
      requireClientCert: false,
    });
    expect(() => loadConfig({ env: { CUSTOS_DICOM_PORT: 'none' }, cwd })).toThrow(
      /CUSTOS_DICOM_PORT: must be a port number or 'off'/,
    );
    expect(() => loadConfig({ env: {}, cwd, flags: { dicom: { aeTitle: 'A\\B' } } })).toThrow(
      /dicom\.aeTitle/,
    );
    expect(() => loadConfig({ env: {}, cwd, flags: { dicom: { aeTitle: 'SEVENTEEN_CHARS_X' } } })).toThrow(
      /dicom\.aeTitle/,
    );
  });
});
