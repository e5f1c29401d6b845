import { describe, expect, it } from 'vitest';
import type { InstanceRef } from '../../services/retrieve-service.js';
import { MAX_PROPOSED_CONTEXTS, storageAssociations } from './storage-contexts.js';

const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

const ref = (sopClassUid: string, transferSyntaxUid: string, sopInstanceUid: string) =>
  ({ sopClassUid, transferSyntaxUid, sopInstanceUid }) as InstanceRef;
const key = (abstractSyntax: string, ts: string) => `${abstractSyntax}|${ts}`;

describe('the presentation contexts proposed to a C-MOVE destination', () => {
  it('fit one association when few: stored forms first, then the forms Custos converts to', () => {
    const refs = [
      ref('1.2.3', EXPLICIT, '9.1'),
      ref('1.2.4', IMPLICIT, '9.2'),
      ref('1.2.3', EXPLICIT, '9.3'),
    ];
    const [only, ...more] = storageAssociations(refs, () => false);
    expect(more).toEqual([]);
    expect(only!.contexts).toEqual([
      { abstractSyntax: '1.2.3', transferSyntaxes: [EXPLICIT] },
      { abstractSyntax: '1.2.4', transferSyntaxes: [IMPLICIT] },
      { abstractSyntax: '1.2.3', transferSyntaxes: [IMPLICIT] },
      { abstractSyntax: '1.2.4', transferSyntaxes: [EXPLICIT] },
    ]);
    expect(only!.refs).toEqual(refs);
  });

  it('go on as many associations as they need, each proposing 128 at most, each object with its forms', () => {
    // 150 classes in Explicit VR, 50 of them in Implicit VR too, and 40 decodable JPEG ones (three forms each).
    const refs: InstanceRef[] = [];
    for (let c = 0; c < 150; c++) refs.push(ref(`1.2.${c}`, EXPLICIT, `9.${c}.1`));
    for (let c = 0; c < 50; c++) refs.push(ref(`1.2.${c}`, IMPLICIT, `9.${c}.2`));
    for (let c = 0; c < 40; c++) refs.push(ref(`1.3.${c}`, JPEG_BASELINE, `9.${c}.3`));
    const associations = storageAssociations(refs, (r) => r.transferSyntaxUid === JPEG_BASELINE);
    expect(associations.length).toBeGreaterThan(1);
    const sent: string[] = [];
    for (const a of associations) {
      const proposed = new Set(a.contexts.map((c) => key(c.abstractSyntax, c.transferSyntaxes[0]!)));
      expect(a.contexts.length).toBeLessThanOrEqual(MAX_PROPOSED_CONTEXTS);
      expect(proposed.size).toBe(a.contexts.length);
      for (const r of a.refs) {
        sent.push(r.sopInstanceUid);
        expect(proposed).toContain(key(r.sopClassUid, r.transferSyntaxUid));
        if (r.transferSyntaxUid === EXPLICIT) expect(proposed).toContain(key(r.sopClassUid, IMPLICIT));
        if (r.transferSyntaxUid === JPEG_BASELINE) {
          expect(proposed).toContain(key(r.sopClassUid, EXPLICIT));
          expect(proposed).toContain(key(r.sopClassUid, IMPLICIT));
        }
      }
    }
    // Every object once.
    expect(sent.sort()).toEqual(refs.map((r) => r.sopInstanceUid).sort());
  });
});
