import { describe, expect, it } from 'vitest';
import { encodeDataset, parseDataset } from './dimse-dataset.js';
import { listableUids } from './dimse-services.js';

const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';

describe('the Failed SOP Instance UID List of a final C-MOVE/C-GET response', () => {
  // 2,300 failed sub-operations of a thin-slice CT study: 30-character UIDs, 71,299 bytes as one value.
  const uids = Array.from({ length: 2300 }, (_, i) => `1.2.826.0.1.3680043.10.${String(100000 + i)}.1`);

  it('is more than an explicit VR UI value can hold when whole: it would go as UN (PS3.5 §6.2.2)', () => {
    // The writer encodes it (until 7 Dec 2026 it threw), but as UN, which a requestor reads as bytes, not as the UID
    // list it is: so the list is cut to what a UI value holds (listableUids).
    const whole = encodeDataset([{ tag: 0x00080058, vr: 'UI', value: uids }], EXPLICIT);
    expect(whole.toString('latin1', 4, 6)).toBe('UN');
    expect(whole.readUInt32LE(8)).toBeGreaterThan(0xffff);
  });

  it('stops at the last UID that fits in explicit VR, and the response encodes', async () => {
    const listed = listableUids(uids, EXPLICIT);
    expect(listed.length).toBeLessThan(uids.length);
    expect(listed).toEqual(uids.slice(0, listed.length));
    const bytes = listed.join('\\').length;
    expect(bytes).toBeLessThanOrEqual(0xfffe);
    // One more would not have fitted.
    expect(bytes + 1 + uids[listed.length]!.length).toBeGreaterThan(0xfffe - 1);
    const ds = await parseDataset(
      encodeDataset([{ tag: 0x00080058, vr: 'UI', value: listed }], EXPLICIT),
      EXPLICIT,
    );
    expect(ds.get(0x00080058)).toMatchObject({ values: listed });
  });

  it('holds every UID in implicit VR, whose lengths are 32-bit', () => {
    expect(listableUids(uids, IMPLICIT)).toEqual(uids);
  });
});
