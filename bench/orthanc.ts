// Orthanc (Debian's orthanc + orthanc-dicomweb) on loopback with its own temporary storage.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor, type Peer } from './proc.js';

export async function startOrthanc(): Promise<Peer> {
  const dir = await mkdtemp(join(tmpdir(), 'orthanc-bench-'));
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const config = {
    Name: 'BENCH',
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'index'),
    StorageCompression: false,
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: 'ORTHANC',
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    HttpServerEnabled: true,
    Plugins: ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so'],
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      EnableWado: true,
      WadoRoot: '/wado',
      Ssl: false,
      StudiesMetadata: 'Full',
      SeriesMetadata: 'Full',
    },
    ConcurrentJobs: 2,
    HttpThreadsCount: 50,
  };
  await writeFile(join(dir, 'orthanc.json'), JSON.stringify(config));
  const child = spawn('Orthanc', [join(dir, 'orthanc.json')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TCP_NODELAY: '1' },
  });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor(async () => (await fetch(`${base}/system`)).ok, `Orthanc to answer (log: ${log})`);
  return {
    name: 'Orthanc',
    dicomweb: `${base}/dicom-web`,
    headers: {},
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          r(undefined);
        }, 10_000);
        child.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
