// The benchmark's timed QIDO-RS client: one keep-alive connection, each answer timed until its last byte.
import { Agent, request } from 'node:http';
import { benchError, type Peer } from './proc.js';

/**
 * A query's latency is the time from sending it until the last byte of the answer has arrived, as load tools
 * (wrk, ab) and the C-FIND measurement (bench/dimse.ts, until the final response) count it. Decoding the JSON is
 * the client's work: it happens after the clock stops, and its time is reported beside (`parseMs`). Measured with
 * fetch() and JSON parsing inside the window, the client's own allocation and collection added ~2.5 ms to the
 * median and up to ~8 ms to the 95th percentile of a ~200 KB answer on this machine (bench/README.md).
 */
export class QidoClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(private readonly peer: Peer) {}

  /** GET `path` (below the DICOMweb base) as DICOM JSON: the time to the last byte, the rows, the decoding time. */
  get(path: string): Promise<{ ms: number; rows: number; parseMs: number }> {
    const url = `${this.peer.dicomweb}${path}`;
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = request(
        url,
        { agent: this.agent, headers: { ...this.peer.headers, Accept: 'application/dicom+json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const ms = performance.now() - t0;
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 204) return resolve({ ms, rows: 0, parseMs: 0 });
            if (res.statusCode !== 200)
              return reject(
                benchError('qido-failed', `${this.peer.name} ${path} answered ${res.statusCode}: ${text}`),
              );
            const p0 = performance.now();
            let rows: number;
            try {
              rows = (JSON.parse(text) as unknown[]).length;
            } catch (err) {
              return reject(
                benchError('qido-failed', `${this.peer.name} ${path} answered unparsable JSON`, err),
              );
            }
            resolve({ ms, rows, parseMs: performance.now() - p0 });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
