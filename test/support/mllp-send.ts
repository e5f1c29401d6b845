import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MllpDecoder, mllpFrame } from '../../src/transports/hl7/mllp-decoder.js';

let sent = 0;

/**
 * Sends `message` (or several, one after the other on one connection) to the MLLP listener on `port` with Debian's
 * mllp_send (python3-hl7), as a sender's script would, from a file in `dir` (its stdin does not take bytes), and
 * returns the ACKs it printed.
 */
export async function mllpSend(dir: string, port: number, message: string | string[]): Promise<string[]> {
  const file = join(dir, `message-${++sent}.hl7`);
  await writeFile(
    file,
    Buffer.concat((Array.isArray(message) ? message : [message]).map((m) => mllpFrame(m))),
  );
  const out = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn('mllp_send', ['--port', String(port), '--file', file, '127.0.0.1']);
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(stdout)) : reject(new Error(`mllp_send exited ${code}: ${stderr}`)),
    );
  });
  // mllp_send prints each reply as it received it, MLLP frame included.
  return new MllpDecoder(1024 * 1024)
    .push(out)
    .flatMap((ev) => (ev.kind === 'frame' ? [ev.payload.toString('utf8')] : []));
}
