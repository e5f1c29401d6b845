import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const bundles = new Map<string, Promise<URL>>();
/** Bundles are built one at a time: each build stops esbuild's service process when it is done. */
let building: Promise<unknown> = Promise.resolve();

/**
 * The script of a worker thread whose entry module is `name` (without extension) beside the module at `from`
 * (its `import.meta.url`). A build runs the compiled `.js`. From source (vitest, tsx) Node cannot load
 * TypeScript in a worker thread, so the entry is bundled once per process with esbuild (a dev dependency, never
 * reached from a build) into node_modules/.cache, where `external` (native) dependencies still resolve.
 */
export function workerScript(from: string, name: string, external: string[] = []): Promise<URL> {
  if (!from.endsWith('.ts')) return Promise.resolve(new URL(`./${name}.js`, from));
  const entry = fileURLToPath(new URL(`./${name}.ts`, from));
  let bundle = bundles.get(entry);
  if (!bundle) {
    bundle = building.then(async () => {
      const esbuild = await import('esbuild');
      const cache = fileURLToPath(new URL('../../node_modules/.cache/custos/', import.meta.url));
      await mkdir(cache, { recursive: true });
      const result = await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        platform: 'node',
        format: 'esm',
        write: false,
        external,
        logLevel: 'silent',
      });
      // esbuild's service process would otherwise outlive the need (and show up as a child of the server).
      await esbuild.stop();
      // Named by content: every test process shares one file per version of the worker's code.
      const contents = result.outputFiles[0]!.contents;
      const hash = createHash('sha256').update(contents).digest('hex').slice(0, 16);
      const out = `${cache}${name}-${hash}.mjs`;
      if (!existsSync(out)) {
        await writeFile(`${out}.${process.pid}.tmp`, contents);
        await rename(`${out}.${process.pid}.tmp`, out);
      }
      return pathToFileURL(out);
    });
    building = bundle.catch(() => undefined);
    bundles.set(entry, bundle);
  }
  return bundle;
}
