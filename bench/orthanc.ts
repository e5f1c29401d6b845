// Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) on loopback with its own temporary storage and index.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchError, freePort, stopChild, tail, waitFor, type Peer } from './proc.js';

/** The DICOMweb plugin as the Debian package installed it (`dpkg -L orthanc-dicomweb`). */
export function dicomWebPluginPath(): string {
  let files: string[];
  try {
    files = execFileSync('dpkg', ['-L', 'orthanc-dicomweb'], { encoding: 'utf8' }).split('\n');
  } catch (cause) {
    throw benchError(
      'orthanc-missing',
      'orthanc-dicomweb is not installed: apt-get install -y orthanc orthanc-dicomweb',
      cause,
    );
  }
  const so = files.filter((f) => /libOrthancDicomWeb\.so/.test(f));
  // Prefer the plugin directory's symlink, the path Orthanc's own Debian configuration loads.
  const path = so.find((f) => f.includes('/plugins/')) ?? so[0];
  if (!path) throw benchError('orthanc-missing', 'orthanc-dicomweb lists no libOrthancDicomWeb.so');
  return path;
}

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
    KeepAlive: true,
    TcpNoDelay: true,
    SaveJobs: false,
    // Only the DICOMweb plugin: the package's plugin directory also holds worklist and folder plugins.
    Plugins: [dicomWebPluginPath()],
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      EnableWado: false,
      Ssl: false,
      // PS3.4 C.2.2.2.1: PN matching may ignore case; Custos does, so compare like with like.
      QidoCaseSensitive: false,
    },
  };
  await writeFile(join(dir, 'orthanc.json'), JSON.stringify(config, null, 2));
  const child = spawn('Orthanc', [join(dir, 'orthanc.json')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TCP_NODELAY: '1' },
  });
  const log = tail(child.stderr);
  const cleanup = async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${httpPort}`;
  try {
    await Promise.race([
      waitFor(async () => (await fetch(`${base}/system`)).ok, 'Orthanc to answer /system'),
      new Promise<never>((_, reject) =>
        child.once('exit', (code, signal) =>
          reject(benchError('orthanc-exited', `Orthanc exited (${code ?? signal}) while starting: ${log()}`)),
        ),
      ),
    ]);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    name: 'Orthanc',
    dicomweb: `${base}/dicom-web`,
    headers: {},
    pid: child.pid!,
    dicomPort,
    aet: 'ORTHANC',
    stop: cleanup,
  };
}
