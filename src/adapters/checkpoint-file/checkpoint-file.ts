import { existsSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CustosError } from '../../domain/errors.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import type { CheckpointSink, SignedCheckpoint } from '../../ports/audit-ledger.js';

/**
 * Signed checkpoints appended, one JSON line each, to a file outside the database (put it on another volume,
 * a WORM mount or a file `chattr +a` makes append-only). O_APPEND keeps concurrent writers' lines whole; each
 * line is fsynced before the checkpoint counts as shipped.
 */
export class CheckpointFile implements CheckpointSink {
  constructor(readonly location: string) {}

  async append(c: SignedCheckpoint): Promise<void> {
    await mkdir(dirname(this.location), { recursive: true, mode: 0o700 });
    const fh = await open(this.location, 'a', 0o600);
    try {
      await fh.write(`${canonicalJson(c)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async readAll(): Promise<SignedCheckpoint[]> {
    if (!existsSync(this.location)) return [];
    const text = await readFile(this.location, 'utf8');
    const out: SignedCheckpoint[] = [];
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const c = JSON.parse(line) as SignedCheckpoint;
        if (typeof c.seq !== 'number' || typeof c.hash !== 'string' || typeof c.signature !== 'string')
          throw new Error('missing fields');
        out.push(c);
      } catch (err) {
        throw new CustosError({
          code: 'audit.checkpoint-file-corrupt',
          message: `${this.location} line ${i + 1} is not a checkpoint: ${(err as Error).message}`,
        });
      }
    });
    return out;
  }
}
