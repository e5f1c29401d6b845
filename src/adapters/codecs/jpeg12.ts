// JPEG with 12-bit samples (ITU-T T.81 extended sequential DCT, Huffman coded: SOF1; what DICOM's JPEG Extended
// transfer syntax 1.2.840.10008.1.2.4.51 carries from CT and MR modalities), one component. jpeg-js, which decodes
// the 8-bit JPEG, stops at 8 bits. Written from the standard: markers (Annex B), Huffman decoding (F.2.2), the
// inverse DCT (A.3.3) and the level shift (A.3.1). Progressive, arithmetic-coded, hierarchical and multi-component
// 12-bit streams are refused by name.

/** A reason the stream is not decoded: `unsupported` (a valid stream of a kind not decoded) or `malformed`. */
export class Jpeg12Error extends Error {
  constructor(
    readonly kind: 'unsupported' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}
const malformed = (m: string) => new Jpeg12Error('malformed', m);

/** Zigzag position → natural (row-major) index of the 8 × 8 block (T.81 Figure A.6). */
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
];

/** cos((2x + 1)uπ/16) · C(u) / 2, by [u * 8 + x]: one dimension of the inverse DCT (T.81 A.3.3). */
const IDCT = (() => {
  const t = new Float64Array(64);
  for (let u = 0; u < 8; u++)
    for (let x = 0; x < 8; x++)
      t[u * 8 + x] = ((u === 0 ? Math.SQRT1_2 : 1) * Math.cos(((2 * x + 1) * u * Math.PI) / 16)) / 2;
  return t;
})();

/** A Huffman table as T.81 F.2.2.3 decodes with it: per code length, the largest code and where its values start. */
interface Huffman {
  maxcode: Int32Array;
  valptr: Int32Array;
  mincode: Int32Array;
  values: Uint8Array;
}

function huffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const valptr = new Int32Array(17);
  const mincode = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    const n = counts[l - 1]!;
    if (n > 0) {
      valptr[l] = k;
      mincode[l] = code;
      code += n;
      k += n;
      maxcode[l] = code - 1;
    }
    code <<= 1;
  }
  maxcode[17] = 0x7fffffff;
  return { maxcode, valptr, mincode, values };
}

/** The entropy-coded bits of a scan (T.81 F.2.2.5): a stuffed 0xFF00 is 0xFF; a marker ends the data. */
class Bits {
  private bit = 0;
  private byte = 0;
  /** A marker was met: what follows reads as zeros. */
  marker = false;
  constructor(
    private readonly data: Uint8Array,
    public pos: number,
  ) {}
  read(): number {
    if (this.bit === 0) {
      if (this.pos >= this.data.length) throw malformed('the scan ends before its last block');
      let b = this.data[this.pos]!;
      if (b === 0xff) {
        const next = this.data[this.pos + 1];
        if (next === 0) this.pos += 2;
        else {
          // A marker inside the data (T.81 F.2.2.5): the rest of this interval reads as zero bits.
          this.marker = true;
          b = 0;
        }
      } else this.pos++;
      this.byte = b;
      this.bit = 8;
    }
    this.bit--;
    return (this.byte >> this.bit) & 1;
  }
  receive(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 1) | this.read();
    return v;
  }
  decode(h: Huffman): number {
    let code = this.read();
    let l = 1;
    while (code > h.maxcode[l]!) {
      code = (code << 1) | this.read();
      if (++l > 16) throw malformed('a Huffman code longer than 16 bits');
    }
    return h.values[h.valptr[l]! + code - h.mincode[l]!]!;
  }
  /** At a restart marker (T.81 F.2.1.3.1): skip to it, check its number, and start afresh after it. */
  restart(expected: number): void {
    this.bit = 0;
    this.marker = false;
    while (this.pos < this.data.length && this.data[this.pos] !== 0xff) this.pos++;
    // Any marker may be preceded by fill bytes 0xFF (T.81 B.1.1.2).
    while (this.data[this.pos + 1] === 0xff) this.pos++;
    const m = this.data[this.pos + 1];
    if (m !== 0xd0 + expected) throw malformed(`restart marker RST${expected} missing`);
    this.pos += 2;
  }
}

/** EXTEND (T.81 F.2.2.1): a `s`-bit magnitude category value as a signed difference. */
const extend = (v: number, s: number) => (s === 0 ? 0 : v < 1 << (s - 1) ? v - (1 << s) + 1 : v);

/**
 * Decode a one-component 12-bit (or 8-bit) extended sequential JPEG: the samples as unsigned 16-bit little endian,
 * row by row. With `expected`, a frame header of other dimensions is refused before anything is allocated for it
 * (a header claiming 65535 × 65535 would ask for 8 GB). Throws Jpeg12Error.
 */
export function decodeJpeg12(
  data: Uint8Array,
  expected?: { rows: number; columns: number },
): {
  pixels: Buffer;
  rows: number;
  columns: number;
  precision: number;
} {
  if (data[0] !== 0xff || data[1] !== 0xd8) throw malformed('no start of image (SOI) marker');
  const quant: (Uint16Array | undefined)[] = [];
  const dc: (Huffman | undefined)[] = [];
  const ac: (Huffman | undefined)[] = [];
  let frame: { precision: number; rows: number; columns: number; tq: number; id: number } | undefined;
  let restartInterval = 0;
  let pos = 2;
  const u16 = (at: number) => (data[at]! << 8) | data[at + 1]!;
  for (;;) {
    if (pos + 4 > data.length) throw malformed('the stream ends before its scan');
    if (data[pos] !== 0xff) throw malformed(`no marker at byte ${pos}`);
    const marker = data[pos + 1]!;
    if (marker === 0xff) {
      pos++;
      continue;
    }
    const length = u16(pos + 2);
    const seg = pos + 4;
    const end = pos + 2 + length;
    if (end > data.length) throw malformed(`marker 0xFF${marker.toString(16)} runs past the stream`);
    if (marker === 0xdb) {
      // DQT: Pq (0: 8-bit values, 1: 16-bit), Tq, 64 values in zigzag order.
      for (let p = seg; p < end;) {
        const pq = data[p]! >> 4;
        const tq = data[p]! & 15;
        p++;
        const table = new Uint16Array(64);
        for (let k = 0; k < 64; k++, p += pq ? 2 : 1) table[k] = pq ? u16(p) : data[p]!;
        quant[tq] = table;
      }
    } else if (marker === 0xc4) {
      // DHT: Tc (0 DC, 1 AC), Th, 16 counts, the values.
      for (let p = seg; p < end;) {
        const tc = data[p]! >> 4;
        const th = data[p]! & 15;
        const counts = data.subarray(p + 1, p + 17);
        const n = counts.reduce((a, b) => a + b, 0);
        const table = huffman(counts, data.subarray(p + 17, p + 17 + n));
        (tc === 0 ? dc : ac)[th] = table;
        p += 17 + n;
      }
    } else if (marker === 0xc0 || marker === 0xc1) {
      const components = data[seg + 5]!;
      if (components !== 1)
        throw new Jpeg12Error('unsupported', `${components} components (one is decoded at 12 bits)`);
      frame = {
        precision: data[seg]!,
        rows: u16(seg + 1),
        columns: u16(seg + 3),
        id: data[seg + 6]!,
        tq: data[seg + 8]!,
      };
      if (frame.rows === 0)
        throw new Jpeg12Error('unsupported', 'the number of lines is given after the scan (DNL)');
      if (expected && (frame.rows !== expected.rows || frame.columns !== expected.columns))
        throw malformed(
          `the frame header says ${frame.columns} × ${frame.rows} pixels where the DICOM header says ${expected.columns} × ${expected.rows}`,
        );
    } else if (marker >= 0xc2 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      throw new Jpeg12Error(
        'unsupported',
        `JPEG process SOF${marker - 0xc0} (progressive, lossless, hierarchical or arithmetic coded)`,
      );
    } else if (marker === 0xdd) {
      restartInterval = u16(seg);
    } else if (marker === 0xda) {
      if (!frame) throw malformed('a scan before the frame header');
      if (data[seg] !== 1 || data[seg + 1] !== frame.id)
        throw malformed('the scan is not of the frame component');
      const td = data[seg + 2]! >> 4;
      const ta = data[seg + 2]! & 15;
      const q = quant[frame.tq];
      const dcTable = dc[td];
      const acTable = ac[ta];
      if (!q || !dcTable || !acTable) throw malformed('a table the scan uses is not defined');
      return {
        ...decodeScan(new Bits(data, end), frame, q, dcTable, acTable, restartInterval),
        precision: frame.precision,
      };
    } else if (marker === 0xd9) {
      throw malformed('end of image before any scan');
    }
    pos = end;
  }
}

function decodeScan(
  bits: Bits,
  frame: { precision: number; rows: number; columns: number },
  q: Uint16Array,
  dcTable: Huffman,
  acTable: Huffman,
  restartInterval: number,
) {
  const { rows, columns, precision } = frame;
  const blocksX = Math.ceil(columns / 8);
  const blocksY = Math.ceil(rows / 8);
  const max = (1 << precision) - 1;
  const shift = 1 << (precision - 1);
  const out = Buffer.allocUnsafeSlow(rows * columns * 2);
  const coef = new Float64Array(64);
  const tmp = new Float64Array(64);
  let pred = 0;
  let restarts = 0;
  const total = blocksX * blocksY;
  for (let b = 0; b < total; b++) {
    if (restartInterval && b > 0 && b % restartInterval === 0) {
      bits.restart(restarts++ % 8);
      pred = 0;
    }
    coef.fill(0);
    const t = bits.decode(dcTable);
    pred += extend(bits.receive(t), t);
    coef[0] = pred * q[0]!;
    for (let k = 1; k < 64;) {
      const rs = bits.decode(acTable);
      const r = rs >> 4;
      const s = rs & 15;
      if (s === 0) {
        if (r !== 15) break;
        k += 16;
        continue;
      }
      k += r;
      if (k > 63) throw malformed('a coefficient past the end of its block');
      coef[ZIGZAG[k]!] = extend(bits.receive(s), s) * q[k]!;
      k++;
    }
    // Rows, then columns: f(x, y) = Σu Σv C(u)C(v)/4 · F(v, u) · cos(..x..u) · cos(..y..v).
    for (let v = 0; v < 8; v++)
      for (let x = 0; x < 8; x++) {
        let sum = 0;
        for (let u = 0; u < 8; u++) sum += coef[v * 8 + u]! * IDCT[u * 8 + x]!;
        tmp[v * 8 + x] = sum;
      }
    const bx = (b % blocksX) * 8;
    const by = Math.floor(b / blocksX) * 8;
    for (let y = 0; y < 8; y++) {
      const row = by + y;
      if (row >= rows) break;
      for (let x = 0; x < 8; x++) {
        const col = bx + x;
        if (col >= columns) break;
        let sum = 0;
        for (let v = 0; v < 8; v++) sum += tmp[v * 8 + x]! * IDCT[v * 8 + y]!;
        const value = Math.round(sum) + shift;
        out.writeUInt16LE(value < 0 ? 0 : value > max ? max : value, (row * columns + col) * 2);
      }
    }
  }
  return { pixels: out, rows, columns };
}
