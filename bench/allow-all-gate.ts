// The "enforcement off" side of bench/policy-overhead.ts: a gate that allows everything without asking a
// decision point, narrowing nothing and looking up no break-glass window. It lives in bench/ only, so it is
// never built into dist/ and no configuration can select it; the benchmark composes it in through
// openApp's wrapGate hook in a process of its own (bench/policy-serve.ts --enforcement off).
import { AccessGate } from '../src/services/access-gate.js';
import type { Decision, StudyFilter } from '../src/ports/policy.js';

const ALLOW: Decision = Object.freeze({
  allowed: true,
  policy: 'bench:allow-all',
  reason: 'enforcement off (bench)',
});
const nothing = async () => undefined;

export class AllowAllGate extends AccessGate {
  constructor() {
    super(
      { decide: async () => ALLOW, decideEach: async (_p, _a, resources) => resources.map(() => ALLOW) },
      { append: nothing, appendIn: nothing, lockIn: nothing },
    );
  }

  override async require(): Promise<Decision> {
    return ALLOW;
  }

  override async requireUnknownStudy(): Promise<void> {}

  override async decide(): Promise<Decision> {
    return ALLOW;
  }

  override async decideEach(_p: unknown, _a: unknown, resources: readonly unknown[]): Promise<Decision[]> {
    return resources.map(() => ALLOW);
  }

  override async narrowing(): Promise<StudyFilter> {
    return { kind: 'all' };
  }
}
