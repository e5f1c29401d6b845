// The V8 11.3 (Node 20) crash behind the server dying under the DIMSE benchmark (docs/dimse.md "Known issues"):
// a lazy deoptimization of optimized code that inlined a JS→wasm call returning externref. Each case runs in a
// child process, because the unguarded one ends in a V8 fatal error (SIGTRAP).
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const adapter = join(root, 'src', 'adapters', 'policy', 'cedar-policy.ts');

/**
 * A Cedar call made hot enough for TurboFan to inline it, then one whose `context` getter (run by the wasm while
 * it reads its argument) deoptimizes the caller: the caller is lazily deoptimized inside the wasm call.
 */
const reproducer = (guarded: boolean) => `
import { createRequire } from 'node:module';
${guarded ? `await import(${JSON.stringify(adapter)});` : ''}
const cedar = createRequire(${JSON.stringify(join(root, 'package.json'))})('@cedar-policy/cedar-wasm/nodejs');
const deopt = new Function('f', '%DeoptimizeFunction(f)');
const prepare = new Function('f', '%PrepareFunctionForOptimization(f)');
const optimizeNext = new Function('f', '%OptimizeFunctionOnNextCall(f)');
const call = () => ({
  principal: { type: 'User', id: 'a' },
  action: { type: 'Action', id: 'view' },
  resource: { type: 'Doc', id: 'd' },
  context: {},
  entities: [],
  policies: { staticPolicies: 'permit(principal, action, resource);' },
});
function decide(c) {
  return cedar.isAuthorized(c);
}
prepare(decide);
for (let i = 0; i < 300; i++) decide(call());
optimizeNext(decide);
decide(call());
const trap = call();
Object.defineProperty(trap, 'context', { enumerable: true, get() { deopt(decide); return {}; } });
const answer = decide(trap);
console.log(answer.type, answer.response.decision);
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custos-v8-guard-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(guarded: boolean) {
  const file = join(dir, `${guarded ? 'guarded' : 'bare'}.mjs`);
  await writeFile(file, reproducer(guarded));
  return spawnSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', file], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('the JS→wasm inlining guard loaded with the Cedar adapter', () => {
  it('keeps a Cedar call alive when its optimized caller is deoptimized inside the wasm', async () => {
    const r = await run(true);
    expect(r.stderr).not.toMatch(/Fatal error/);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('success allow');
  });

  // The control shows the reproducer reaches the defect, so the case above would fail without the guard.
  it.runIf(process.versions.v8.startsWith('11.'))(
    'without the guard, the same sequence is a V8 fatal error on Node 20 (V8 11.x)',
    async () => {
      const r = await run(false);
      expect(r.signal).toBe('SIGTRAP');
      expect(r.stderr).toMatch(/DoComputeBuiltinContinuation/);
    },
  );
});
