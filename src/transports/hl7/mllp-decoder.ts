/**
 * Minimal Lower Layer Protocol framing (HL7 v2.5.1 Appendix C.4; IHE ITI TF-2 Appendix C): each message is
 * sent as <VT=0x0B> message <FS=0x1C><CR=0x0D>. A TCP read may hold part of a frame or several frames; the
 * decoder keeps what it has not finished and reports, in order, each frame, each run of bytes outside a frame,
 * and each frame that exceeded the size limit (whose content is dropped as it arrives, never buffered whole).
 */
export const MLLP_START = 0x0b;
export const MLLP_END = 0x1c;
export const MLLP_CR = 0x0d;

export type MllpEvent =
  | { kind: 'frame'; payload: Buffer }
  /** Bytes that arrived outside a frame (other than whitespace, which senders put between frames). */
  | { kind: 'garbage'; bytes: Buffer }
  /** A frame larger than the limit: its first bytes (to address a reply) and its full size. */
  | { kind: 'oversize'; head: Buffer; size: number }
  /** A frame a new start block cut short (the sender began another before ending it): its head and size. */
  | { kind: 'abandoned'; head: Buffer; size: number }
  /**
   * More bytes in a row than the decoder discards (see MllpDecoder): outside a frame (`head` undefined; `size` the
   * run, whitespace included), or of a frame past twice the limit with no end block yet (its head and size so far).
   * The decoder reads nothing after it: the connection is to be closed.
   */
  | { kind: 'overrun'; head: Buffer | undefined; size: number };

const HEAD_BYTES = 4096;

/**
 * Decodes one connection's bytes. What it cannot use it discards as it arrives, and it discards at most
 * `maxMessageBytes` bytes in a row: a run of bytes outside a frame (whitespace included) longer than that, or a
 * frame still without its end block when it is twice that long (its bytes past the limit discarded), ends the
 * decoding with an 'overrun'. No sender of HL7 sends either; a peer streaming without end would otherwise hold its
 * connection for good, as every read starts the idle time again.
 */
export class MllpDecoder {
  private inFrame = false;
  private parts: Buffer[] = [];
  private size = 0;
  private oversize = false;
  private garbage: Buffer[] = [];
  private garbageSize = 0;
  /**
   * The run of bytes outside a frame being read was reported already, at the end of the read that brought it with
   * no start block behind it: what else of it comes before the next start block is dropped unreported.
   */
  private garbageReported = false;
  /** True after FS, waiting for the CR that completes the end block. */
  private afterEnd = false;
  /** Bytes outside a frame since the last frame ended (or the connection began), whitespace included. */
  private outside = 0;
  /** Runs begun so far (see `run`). */
  private runs = 0;
  /** True after an overrun: nothing more is read. */
  private stopped = false;

  constructor(private readonly maxMessageBytes: number) {}

  push(chunk: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    if (this.stopped) return events;
    let i = 0;
    while (i < chunk.length) {
      if (this.afterEnd) {
        this.afterEnd = false;
        // FS without its CR is tolerated: the frame has ended either way.
        if (chunk[i] === MLLP_CR) i++;
        continue;
      }
      if (!this.inFrame) {
        const start = chunk.indexOf(MLLP_START, i);
        const stop = start === -1 ? chunk.length : start;
        if (stop > i) this.addGarbage(chunk.subarray(i, stop));
        this.outside += stop - i;
        if (this.outside > this.maxMessageBytes) {
          // Until 8 Dec 2026 such a run was read (and dropped) for as long as the peer sent it.
          if (!this.garbageReported && this.garbageSize > 0)
            events.push({ kind: 'garbage', bytes: Buffer.concat(this.garbage) });
          return this.stop(events, { kind: 'overrun', head: undefined, size: this.outside });
        }
        if (start === -1) break;
        this.flushGarbage(events);
        this.outside = 0;
        this.inFrame = true;
        this.runs++;
        this.parts = [];
        this.size = 0;
        this.oversize = false;
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(MLLP_END, i);
      const restart = chunk.indexOf(MLLP_START, i);
      if (restart !== -1 && (end === -1 || restart < end)) {
        // A start block inside a frame (which HL7 text never holds) begins the next frame: the sender gave the
        // one before up. Until 7 Dec 2026 it was read as part of that frame, and both messages were answered as
        // one, with the first's header, cut where the second began (an AR about a field that was not there).
        this.addToFrame(chunk.subarray(i, restart));
        events.push({ kind: 'abandoned', ...this.unfinished()! });
        this.parts = [];
        this.size = 0;
        this.oversize = false;
        this.runs++;
        i = restart + 1;
        continue;
      }
      const stop = end === -1 ? chunk.length : end;
      this.addToFrame(chunk.subarray(i, stop));
      if (this.size > 2 * this.maxMessageBytes) {
        // Until 8 Dec 2026 an over-long frame was read (and dropped) until its end block, however long it was.
        return this.stop(events, { kind: 'overrun', ...this.unfinished()! });
      }
      if (end === -1) break;
      events.push(this.finishFrame());
      this.inFrame = false;
      this.afterEnd = true;
      i = end + 1;
    }
    // Bytes outside a frame with no start block behind them in this read are reported now, once per run, not when a
    // frame next begins: a peer that is no MLLP sender (a TLS handshake, an HTTP request on the wrong port) sends
    // none, and until 7 Dec 2026 it got no answer, only the idle timeout's close.
    if (!this.inFrame && this.garbageSize > 0 && !this.garbageReported) {
      events.push({ kind: 'garbage', bytes: Buffer.concat(this.garbage) });
      this.garbage = [];
      this.garbageReported = true;
    }
    return events;
  }

  /**
   * Which run of bytes the peer is in the middle of, if any: a frame begun and not ended, or bytes outside a frame
   * other than whitespace; undefined between frames. Each run has its own number, so a caller can bound how long one
   * takes.
   */
  get run(): number | undefined {
    return !this.stopped && (this.inFrame || this.garbageSize > 0) ? this.runs : undefined;
  }

  /** Bytes buffered in an unfinished frame (for an idle connection's report). */
  get pending(): number {
    return this.inFrame ? this.size : this.garbageSize;
  }

  /** The frame begun and not ended, if any: its head (to name the message) and its size so far. */
  unfinished(): { head: Buffer; size: number } | undefined {
    if (!this.inFrame || this.stopped) return undefined;
    return { head: Buffer.concat(this.parts).subarray(0, HEAD_BYTES), size: this.size };
  }

  private stop(events: MllpEvent[], overrun: MllpEvent): MllpEvent[] {
    events.push(overrun);
    this.stopped = true;
    this.parts = [];
    this.garbage = [];
    return events;
  }

  private addToFrame(bytes: Buffer) {
    if (bytes.length === 0) return;
    const before = this.size;
    this.size += bytes.length;
    if (this.size > this.maxMessageBytes) {
      if (!this.oversize) {
        // Keep only the head, to read MSH from; everything else of an over-long frame is discarded.
        const head = Buffer.concat([...this.parts, bytes]).subarray(0, HEAD_BYTES);
        this.parts = [Buffer.from(head)];
        this.oversize = true;
      } else if (before < HEAD_BYTES) {
        this.parts.push(Buffer.from(bytes.subarray(0, HEAD_BYTES - before)));
      }
      return;
    }
    this.parts.push(Buffer.from(bytes));
  }

  private finishFrame(): MllpEvent {
    const payload = Buffer.concat(this.parts);
    this.parts = [];
    if (this.oversize) return { kind: 'oversize', head: payload.subarray(0, HEAD_BYTES), size: this.size };
    return { kind: 'frame', payload };
  }

  private addGarbage(bytes: Buffer) {
    // Whitespace and stray CR/LF between frames are common and harmless.
    if (/^[\s]*$/.test(bytes.toString('latin1')) && this.garbageSize === 0) return;
    if (!this.garbageReported && this.garbageSize < HEAD_BYTES)
      this.garbage.push(Buffer.from(bytes.subarray(0, HEAD_BYTES - this.garbageSize)));
    if (this.garbageSize === 0) this.runs++;
    this.garbageSize += bytes.length;
  }

  private flushGarbage(events: MllpEvent[]) {
    if (this.garbageSize === 0) return;
    if (!this.garbageReported) events.push({ kind: 'garbage', bytes: Buffer.concat(this.garbage) });
    this.garbage = [];
    this.garbageSize = 0;
    this.garbageReported = false;
  }
}

/** Wrap a message in an MLLP frame. */
export function mllpFrame(message: string | Buffer): Buffer {
  const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
  return Buffer.concat([Buffer.of(MLLP_START), bytes, Buffer.of(MLLP_END, MLLP_CR)]);
}
