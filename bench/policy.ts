/**
 * Decisions per second of the Cedar policy decision point with the shipped default policies (a measurement
 * script, not a test: it prints, it asserts nothing).
 *
 *   npx tsx bench/policy.ts [--decisions 200000]
 *
 * Mixes the decisions of the hot path: QIDO row checks and WADO reads by radiologists, referring physicians and
 * students over studies in and out of their scope, including restricted ones. The policy set is parsed once
 * (per version) and cached; each decision builds the principal and study entities and evaluates every policy.
 * Two figures: every decision evaluated by Cedar (memo off), and with the decision point's per-version memo
 * over 64 studies x 4 accounts x 5 actions, where a repeated request is answered from memory.
 */
import { parseArgs } from 'node:util';
import { CedarPolicyDecisionPoint, CedarPolicyValidator } from '../src/adapters/policy/cedar-policy.js';
import { asUserId } from '../src/domain/ids.js';
import type { Principal } from '../src/domain/principal.js';
import type { Action, ResourceRef } from '../src/ports/policy.js';

const { values: args } = parseArgs({ options: { decisions: { type: 'string', default: '200000' } } });
const total = Number(args.decisions);

const text = new CedarPolicyValidator().defaultPolicyText();
const source = { activeVersion: async () => 1, text: async () => text };

const principals: Principal[] = [
  { role: 'radiologist', department: 'Radiology' },
  { role: 'referring-physician', physicianName: 'Smith^John', physicianId: 'NPI-1' },
  { role: 'student' },
  { role: 'technologist', department: 'Cardiology' },
].map((p, i) => ({
  kind: 'user',
  id: asUserId(String(i + 1)),
  name: `u${i}`,
  source: 'bench',
  projects: [],
  ...p,
}));

const studies: ResourceRef[] = Array.from({ length: 64 }, (_, i) => ({
  type: 'study',
  studyUid: `2.25.${i}`,
  patientId: `PID-${i}`,
  department: ['Radiology', 'Cardiology', 'Oncology'][i % 3]!,
  classification: i % 16 === 0 ? 'restricted' : 'normal',
  owner: null,
  referringPhysicianName: i % 4 === 0 ? 'SMITH^JOHN' : 'Jones^Mary',
  referringPhysicianIds: i % 8 === 1 ? ['NPI-1'] : [],
  careTeam: i % 5 === 0 ? ['4'] : [],
  projects: [],
  grantees: i % 7 === 0 ? ['3'] : [],
}));
const actions: Action[] = ['query', 'query', 'query', 'view-metadata', 'view-pixels'];

async function measure(label: string, pdp: CedarPolicyDecisionPoint) {
  // Warm up: parse the policy set, JIT the entity builders.
  for (let i = 0; i < 2000; i++) await pdp.decide(principals[i % 4]!, actions[i % 5]!, studies[i % 64]!);
  let allowed = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < total; i++) {
    const d = await pdp.decide(principals[i % 4]!, actions[i % 5]!, studies[(i * 7) % 64]!);
    if (d.allowed) allowed++;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `${label}: ${total} decisions in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} decisions/s, ` +
      `${((seconds / total) * 1e6).toFixed(1)} µs each (${allowed} allowed, ${total - allowed} denied)`,
  );
}

await measure('Cedar, memo off', new CedarPolicyDecisionPoint(source, { memoSize: 0 }));
await measure('Cedar, memo on ', new CedarPolicyDecisionPoint(source));
