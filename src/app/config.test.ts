import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const cwd = mkdtempSync(join(tmpdir(), 'custos-config-'));

describe('loadConfig', () => {
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
    });
    expect(loadConfig({ env: { CUSTOS_HTTP_PORT: '9100' }, cwd, configFile: file }).http.port).toBe(9100);
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
      /database\.url: must be a postgres/,
    );
  });
  it('reads <dataDir>/custos.json when present', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-config-data-'));
    writeFileSync(join(dir, 'custos.json'), JSON.stringify({ http: { port: 8181 } }));
    expect(loadConfig({ env: { CUSTOS_DATA_DIR: dir }, cwd }).http.port).toBe(8181);
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
