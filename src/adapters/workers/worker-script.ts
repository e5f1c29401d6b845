import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

const bundles = new Map<string, Promise<URL>>();

/**
 * The script of a worker thread, given the URL of its TypeScript source (`new URL('./x-worker.ts',
 * import.meta.url)` from the module that starts it). A build runs the compiled `.js` beside that source. From
 * source (vitest, tsx) Node cannot load TypeScript in a worker thread, so the worker is bundled once per process
 * with esbuild (a dev dependency, never reached from a build) into node_modules/.cache, where its `external`
 * (native) dependencies still resolve.
 */
export async function workerScript(source: URL, external: string[] = []): Promise<URL> {
  if (!source.pathname.endsWith('.ts')) return source;
  const key = source.href;
  let bundle = bundles.get(key);
  if (!bundle) {
    bundle = (async () => {
      const esbuild = await import('esbuild');
      const cache = fileURLToPath(new URL('../../../node_modules/.cache/custos/', import.meta.url));
      await mkdir(cache, { recursive: true });
      const result = await esbuild.build({
        entryPoints: [fileURLToPath(source)],
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
      const name = fileURLToPath(source).split('/').pop()!.replace(/\.ts$/, '');
      const out = `${cache}${name}-${createHash('sha256').update(contents).digest('hex').slice(0, 16)}.mjs`;
      if (!existsSync(out)) {
        await writeFile(`${out}.${process.pid}.tmp`, contents);
        await rename(`${out}.${process.pid}.tmp`, out);
      }
      return pathToFileURL(out);
    })();
    bundles.set(key, bundle);
  }
  return bundle;
}

/** The URL of a worker's source as the running code sees it: `.ts` from source, `.js` in a build. */
export function workerSource(name: string, base: string): URL {
  return new URL(`./${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}
