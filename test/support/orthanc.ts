// Orthanc (Debian package) as a PACS peer for DIMSE and DICOMweb interop tests, with a temporary storage and index.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild } from './dcmtk.js';

/** Where Debian's orthanc-dicomweb package puts the plugin. */
const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancPeer {
  base: string;
  dicomPort: number;
  aet: string;
  stop(): Promise<void>;
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

/** A modality Orthanc knows: [AET, host, port], or the object form (to call it over DICOM TLS). */
export type OrthancModality =
  [string, string, number] | { AET: string; Host: string; Port: number; UseDicomTls?: boolean };

export async function startOrthancPeer(
  modalities: Record<string, OrthancModality>,
  opts: {
    /** DICOM TLS on Orthanc's DICOM port (incoming and, per modality, outgoing): PEM files. */
    tls?: { cert: string; key: string; trusted: string };
    /**
     * Load Debian's DICOMweb plugin (orthanc-dicomweb) with these remote DICOMweb servers, which Orthanc then
     * pushes to (STOW-RS), pulls from (WADO-RS) and queries (QIDO-RS) through /dicom-web/servers/{name}/….
     */
    dicomWebServers?: Record<string, { Url: string; HttpHeaders?: Record<string, string> }>;
    /** More configuration options, e.g. `DefaultEncoding`. */
    config?: Record<string, unknown>;
  } = {},
): Promise<OrthancPeer> {
  if (opts.dicomWebServers && !existsSync(DICOMWEB_PLUGIN))
    throw new Error(`${DICOMWEB_PLUGIN} is missing: apt-get install orthanc-dicomweb`);
  const dir = await mkdtemp(join(tmpdir(), 'orthanc-test-'));
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const config = {
    Name: 'TEST',
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'index'),
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: 'ORTHANC',
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomModalities: modalities,
    DicomScuTimeout: 20,
    Plugins: opts.dicomWebServers ? [DICOMWEB_PLUGIN] : [],
    ...(opts.dicomWebServers
      ? { DicomWeb: { Enable: true, Root: '/dicom-web/', Servers: opts.dicomWebServers } }
      : {}),
    TcpNoDelay: true,
    SaveJobs: false,
    ...opts.config,
    ...(opts.tls
      ? {
          DicomTlsEnabled: true,
          DicomTlsCertificate: opts.tls.cert,
          DicomTlsPrivateKey: opts.tls.key,
          DicomTlsTrustedCertificates: opts.tls.trusted,
          DicomTlsRemoteCertificateRequired: true,
        }
      : {}),
  };
  await writeFile(join(dir, 'orthanc.json'), JSON.stringify(config));
  const child = spawn('Orthanc', [join(dir, 'orthanc.json')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TCP_NODELAY: '1' },
  });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const base = `http://127.0.0.1:${httpPort}`;
  const stop = async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`Orthanc exited while starting: ${log}`);
    }
    const ok = await fetch(`${base}/system`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 300) {
      await stop();
      throw new Error(`Orthanc did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    dicomPort,
    aet: 'ORTHANC',
    stop,
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await fetch(`${base}${path}`, {
        method,
        ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`Orthanc ${method} ${path}: ${res.status} ${text} ${log.slice(-2000)}`);
      return (text ? JSON.parse(text) : undefined) as T;
    },
  };
}
