// The PDU framer read whole and streamed: a P-DATA-TF PDU taken in pieces must carry exactly the PDVs that
// decodePdu finds in it, however the socket splits the bytes, and must reject the same malformed lengths.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePdu, encodeReleaseRq, PduError, PduFramer, PduType, pdvHeader, type Pdv } from './pdu.js';

/** One P-DATA-TF PDU of these PDVs (pdvHeader's 12 bytes are a PDU header and one PDV header). */
function pData(pdvs: Pdv[]): Buffer {
  const body = Buffer.concat(
    pdvs.flatMap((p) => [pdvHeader(p.contextId, p.command, p.last, p.data.length).subarray(6), p.data]),
  );
  const head = Buffer.alloc(6);
  head[0] = PduType.PData;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

/** Feeds `bytes` in the given split and reads the framer the streaming way. */
function stream(framer: PduFramer, bytes: Buffer, cuts: number[]) {
  const out: ({ type: number; body: Buffer } | Pdv)[] = [];
  let at = 0;
  for (const end of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    framer.push(bytes.subarray(at, end));
    at = end;
    for (let next = framer.next(true); next; next = framer.next(true)) out.push(next);
  }
  return out;
}

const pdvArb = fc.record({
  contextId: fc.integer({ min: 1, max: 255 }).filter((n) => n % 2 === 1),
  command: fc.boolean(),
  last: fc.boolean(),
  data: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
});

describe('PduFramer', () => {
  it('streams the PDV items of P-DATA-TF PDUs in pieces that add up to what decodePdu reads', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(pdvArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
        fc.array(fc.integer({ min: 0, max: 20_000 }), { maxLength: 12 }),
        (pdus, cuts) => {
          const wire = Buffer.concat([...pdus.map(pData), encodeReleaseRq()]);
          const out = stream(new PduFramer(1 << 20), wire, cuts);
          // What came out, gathered back into items: a piece ends an item when its PDU's next piece starts one.
          const expected = pdus.flatMap((p) => {
            const d = decodePdu(PduType.PData, pData(p).subarray(6));
            return d.type === 'p-data' ? d.pdvs : [];
          });
          const pieces = out.filter((o): o is Pdv => !('body' in o));
          const whole = out.filter((o) => 'body' in o);
          expect(whole).toHaveLength(1);
          expect((whole[0] as { type: number }).type).toBe(PduType.ReleaseRq);
          let i = 0;
          for (const item of expected) {
            const parts: Buffer[] = [];
            let remaining = item.data.length;
            do {
              const piece = pieces[i++]!;
              expect(piece.contextId).toBe(item.contextId);
              expect(piece.command).toBe(item.command);
              parts.push(piece.data);
              remaining -= piece.data.length;
              // `last` is set on the final piece of a last-flagged item, and on no other.
              expect(piece.last).toBe(item.last && remaining === 0);
            } while (remaining > 0);
            expect(Buffer.concat(parts).equals(item.data)).toBe(true);
          }
          expect(i).toBe(pieces.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hands on the first bytes of a data set before the rest of its PDU has arrived', () => {
    const data = Buffer.alloc(600_000, 7);
    const wire = pData([{ contextId: 1, command: false, last: true, data }]);
    const framer = new PduFramer(1 << 20);
    framer.push(wire.subarray(0, 65_536));
    const first = framer.next(true) as Pdv;
    expect(first.data.length).toBe(65_536 - 12);
    expect(first.last).toBe(false);
    expect(framer.next(true)).toBeUndefined();
    // Read whole, the same bytes give nothing until the PDU is complete.
    const whole = new PduFramer(1 << 20);
    whole.push(wire.subarray(0, 65_536));
    expect(whole.next()).toBeUndefined();
  });

  it.each([
    ['a PDV item length past its PDU', (b: Buffer) => b.writeUInt32BE(b.readUInt32BE(6) + 1, 6), /overruns/],
    ['a PDV item length under 2', (b: Buffer) => b.writeUInt32BE(1, 6), /overruns/],
    ['a PDU of length 0', (b: Buffer) => b.writeUInt32BE(0, 2), /without PDV items/],
    ['a PDU too short for an item header', (b: Buffer) => b.writeUInt32BE(3, 2), /truncated/],
    ['a PDU over the maximum', (b: Buffer) => b.writeUInt32BE((1 << 20) + 7, 2), /exceeds/],
  ])('rejects %s, streamed or whole', (_what, corrupt, message) => {
    const wire = pData([{ contextId: 1, command: true, last: true, data: Buffer.alloc(40, 1) }]);
    corrupt(wire);
    expect(() => stream(new PduFramer(1 << 20), wire, [])).toThrow(message);
    expect(() => stream(new PduFramer(1 << 20), wire, [])).toThrow(PduError);
    const whole = new PduFramer(1 << 20);
    whole.push(Buffer.concat([wire, Buffer.alloc(8)]));
    expect(() => {
      const next = whole.next();
      if (next) decodePdu(next.type, next.body);
    }).toThrow(PduError);
  });
});

describe('A-ASSOCIATE-RQ user identity (PS3.7 D.3.3.7.1)', () => {
  const item = (type: number, value: Buffer) => {
    const h = Buffer.alloc(4);
    h[0] = type;
    h.writeUInt16BE(value.length, 2);
    return Buffer.concat([h, value]);
  };
  /** The body of an A-ASSOCIATE-RQ whose user information carries these sub-items after the maximum length. */
  const rqBody = (userSubs: Buffer[]) => {
    const head = Buffer.alloc(68);
    head.writeUInt16BE(1, 0);
    head.write('CUSTOS'.padEnd(16), 4, 'latin1');
    head.write('SCU'.padEnd(16), 20, 'latin1');
    const context = item(
      0x20,
      Buffer.concat([
        Buffer.from([1, 0, 0, 0]),
        item(0x30, Buffer.from('1.2.840.10008.1.1')),
        item(0x40, Buffer.from('1.2.840.10008.1.2')),
      ]),
    );
    const max = Buffer.alloc(4);
    max.writeUInt32BE(16384);
    return Buffer.concat([
      head,
      item(0x10, Buffer.from('1.2.840.10008.3.1.1.1')),
      context,
      item(0x50, Buffer.concat([item(0x51, max), ...userSubs])),
    ]);
  };
  /** type(1) positive-response(1) primary-length(2) primary secondary-length(2) secondary */
  const identity = (type: number, positive: boolean, primary: string, secondary: string, lie = 0) => {
    const p = Buffer.from(primary);
    const s = Buffer.from(secondary);
    const v = Buffer.alloc(6 + p.length + s.length);
    v[0] = type;
    v[1] = positive ? 1 : 0;
    v.writeUInt16BE(p.length + lie, 2);
    p.copy(v, 4);
    v.writeUInt16BE(s.length, 4 + p.length);
    s.copy(v, 6 + p.length);
    return item(0x58, v);
  };

  it('reads the type, the positive-response request and both fields', () => {
    const rq = decodePdu(PduType.AssociateRq, rqBody([identity(2, true, 'rad', 'cst_token')]));
    expect(rq.type === 'associate-rq' && rq.user.identity).toEqual({
      type: 2,
      positiveResponseRequested: true,
      primary: Buffer.from('rad'),
      secondary: Buffer.from('cst_token'),
    });
  });

  it('refuses a sub-item whose field lengths overrun it (an A-ABORT, not a crash)', () => {
    expect(() => decodePdu(PduType.AssociateRq, rqBody([identity(2, true, 'rad', 'x', 40)]))).toThrow(
      PduError,
    );
  });
});
