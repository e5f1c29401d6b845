// Agreement of Custos header validation (src/domain/validation) with dciodvfy (dicom3tools) on a generated
// corpus: one valid object per SOP class and copies with one injected defect each (bench/validation-corpus.ts).
// Prints, per defect class, how often both flag the broken attribute, only Custos, only dciodvfy, or neither;
// and what each reports on the valid objects. Run: npx tsx bench/validation-agreement.ts [--verbose]
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tagForKeyword } from '../src/dicom/dictionary.js';
import { parsePart10 } from '../src/dicom/part10-parser.js';
import { tagToHex } from '../src/dicom/tags.js';
import { validateHeader } from '../src/domain/validation/validate-header.js';
import { corpus, type DefectClass } from './validation-corpus.js';

const run = promisify(execFile);
const verbose = process.argv.includes('--verbose');

async function dciodvfy(path: string): Promise<string[]> {
  // dciodvfy exits non-zero when it finds errors; its findings are on stderr.
  const r = await run('dciodvfy', ['-new', path]).catch((e: { stdout?: string; stderr?: string }) => ({
    stdout: e.stdout ?? '',
    stderr: e.stderr ?? '',
  }));
  return `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^Error/.test(l));
}

/**
 * Does a dciodvfy error line concern this attribute? It names elements as `</Keyword(gggg,eeee)>` (-new),
 * `Element=<Keyword>`, or `(0xgggg,0xeeee) VR Name` for value errors.
 */
function mentions(line: string, keyword: string): boolean {
  const hex = tagToHex(tagForKeyword(keyword)!);
  const g = hex.slice(0, 4).toLowerCase();
  const e = hex.slice(4).toLowerCase();
  const l = line.toLowerCase();
  return (
    line.includes(`<${keyword}>`) ||
    line.includes(`/${keyword}(`) ||
    l.includes(`(0x${g},0x${e})`) ||
    l.includes(`(${g},${e})`)
  );
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'custos-validation-agreement-'));
  const rows = new Map<
    DefectClass,
    { both: number; custos: number; dciodvfy: number; neither: number; n: number }
  >();
  const missed: string[] = [];
  const validFindings: string[] = [];
  try {
    for (const obj of corpus()) {
      const path = join(dir, `${obj.name}.dcm`);
      await writeFile(path, obj.bytes);
      const parsed = await parsePart10(obj.bytes);
      const custos = validateHeader(parsed.dataset).defects;
      const theirs = await dciodvfy(path);
      if (!obj.defect) {
        for (const d of custos) validFindings.push(`${obj.name}: Custos: ${d.message}`);
        for (const l of theirs) validFindings.push(`${obj.name}: dciodvfy: ${l}`);
        continue;
      }
      const hex = obj.defect.path ?? tagToHex(tagForKeyword(obj.defect.keyword)!);
      const c = custos.some((d) => d.tag === hex);
      const t = theirs.some((l) => mentions(l, obj.defect!.keyword));
      const row = rows.get(obj.defect.class) ?? { both: 0, custos: 0, dciodvfy: 0, neither: 0, n: 0 };
      row.n++;
      if (c && t) row.both++;
      else if (c) row.custos++;
      else if (t) row.dciodvfy++;
      else row.neither++;
      rows.set(obj.defect.class, row);
      if (!(c && t) || verbose)
        missed.push(
          `${obj.name}: Custos ${c ? 'flags' : 'misses'}, dciodvfy ${t ? 'flags' : 'misses'}${
            verbose
              ? `\n    custos: ${custos.map((d) => d.message).join(' | ')}\n    dciodvfy: ${theirs.join(' | ')}`
              : ''
          }`,
        );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  console.log('defect class      objects   both  only Custos  only dciodvfy  neither  agreement');
  let all = { both: 0, n: 0, custos: 0, dciodvfy: 0, neither: 0 };
  for (const [cls, r] of rows) {
    all = {
      both: all.both + r.both,
      n: all.n + r.n,
      custos: all.custos + r.custos,
      dciodvfy: all.dciodvfy + r.dciodvfy,
      neither: all.neither + r.neither,
    };
    console.log(
      `${cls.padEnd(16)} ${pad(r.n, 8)} ${pad(r.both, 6)} ${pad(r.custos, 12)} ${pad(r.dciodvfy, 14)} ${pad(r.neither, 8)} ${pad(((100 * (r.both + r.neither)) / r.n).toFixed(1), 9)}%`,
    );
  }
  console.log(
    `${'all'.padEnd(16)} ${pad(all.n, 8)} ${pad(all.both, 6)} ${pad(all.custos, 12)} ${pad(all.dciodvfy, 14)} ${pad(all.neither, 8)} ${pad(((100 * (all.both + all.neither)) / all.n).toFixed(1), 9)}%`,
  );
  console.log(
    `\nfindings on the ${new Set(validFindings.map((f) => f.split(':')[0])).size} valid objects with any (of ${
      corpus().filter((o) => !o.defect).length
    }):`,
  );
  for (const f of validFindings) console.log(`  ${f}`);
  if (missed.length) {
    console.log('\ndisagreements:');
    for (const m of missed) console.log(`  ${m}`);
  }
}

await main();
