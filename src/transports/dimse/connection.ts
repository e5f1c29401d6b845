/**
 * One DICOM upper-layer connection after association: P-DATA-TF framing of DIMSE messages in both directions
 * (PS3.8 §9.3.5, PS3.7 §6.3.1), with back-pressure. The association roles (acceptor in scp-association.ts,
 * requestor in scu-association.ts) sit on top of it.
 */
import type { Socket } from 'node:net';
import { decodeCommand, encodeCommand, hasDataset, type Command } from './command.js';
import { AbortReason, PduError, pdvHeader, type Pdv } from './pdu.js';

/** Bytes of one received data set handed to a consumer as they arrive; the reader waits while it is full. */
export class DataQueue implements AsyncIterable<Buffer> {
  private items: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  private error: Error | undefined;
  private closed = false;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  constructor(private readonly highWater = 4 * 1024 * 1024) {}

  /** Queue `b`; a promise, resolved once the consumer has made room, when the queue is over its high water. */
  push(b: Buffer): Promise<void> | undefined {
    if (this.closed) return undefined;
    this.items.push(b);
    this.bytes += b.length;
    this.wake();
    return this.bytes > this.highWater ? this.room() : undefined;
  }

  private async room(): Promise<void> {
    while (this.bytes > this.highWater && !this.closed) {
      await new Promise<void>((r) => (this.wakeProducer = r));
    }
  }

  end() {
    this.ended = true;
    this.wake();
  }

  fail(err: Error) {
    this.error = err;
    this.wake();
  }

  /** The consumer stopped (e.g. the store was refused): later bytes are dropped, the reader never waits. */
  close() {
    this.closed = true;
    this.items = [];
    this.bytes = 0;
    const p = this.wakeProducer;
    this.wakeProducer = undefined;
    p?.();
  }

  private wake() {
    const c = this.wakeConsumer;
    this.wakeConsumer = undefined;
    c?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    try {
      for (;;) {
        if (this.error) throw this.error;
        const b = this.items.shift();
        if (b) {
          this.bytes -= b.length;
          if (this.bytes <= this.highWater) {
            const p = this.wakeProducer;
            this.wakeProducer = undefined;
            p?.();
          }
          yield b;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((r) => (this.wakeConsumer = r));
      }
    } finally {
      this.close();
    }
  }
}

/** What the role layer wants done with a message's data set. */
export type DataSink =
  | { kind: 'stream'; queue: DataQueue }
  | {
      kind: 'buffer';
      limit: number;
      done: (data: Buffer) => void;
      /**
       * A data set longer than `limit`: when given, the rest of it is read and dropped, and this is called with
       * its length once it ended (the request can be answered with a failure status); without it, the
       * association is aborted.
       */
      tooLarge?: (bytes: number) => void;
    };

export interface MessageHandler {
  /** A request (or response) command arrived; for one with a data set, say where its bytes go. */
  command(contextId: number, cmd: Command): DataSink | undefined;
}

const MAX_COMMAND_BYTES = 64 * 1024;

/** The 6 bytes of a PDV item before its data (item length, context ID, message control header; PS3.8 §9.3.5.1). */
const PDV_HEADER_BYTES = 6;

/**
 * Whether a peer's Maximum Length Received (PS3.8 D.1) leaves room for data: 0 (no limit), or more than a PDV
 * item's header. A P-DATA-TF PDU to such a peer is at most that long, however small (PS3.8 §9.3.5).
 */
export const usablePeerMaxPdu = (n: number) => n === 0 || n > PDV_HEADER_BYTES;

/** Assembles PDVs into DIMSE messages and writes messages as PDVs no larger than the peer accepts. */
export class DimseConnection {
  private commandParts: Buffer[] = [];
  private commandBytes = 0;
  private commandContext = -1;
  private dataSink: DataSink | undefined;
  private dataContext = -1;
  private dataParts: Buffer[] = [];
  private dataBytes = 0;
  private writeChain: Promise<void> = Promise.resolve();
  private nextMessageId = 1;
  private readonly waiting = new Map<number, { resolve: (c: Command, data?: Buffer) => void }>();
  /** Why the association ended (the first failPending), for what waited on it: the first cause, not a later one. */
  endedBy: string | undefined;

  constructor(
    readonly socket: Socket,
    private readonly handler: MessageHandler,
    /** The peer's maximum PDU length (0 = no limit: Custos then sends 1 MiB PDUs). */
    private peerMaxPdu: number,
    /**
     * How long a write may wait for the peer to read (the socket's buffer to drain) before the association is
     * aborted: a peer that stops reading would otherwise hold a C-MOVE, a C-GET or a C-FIND, and its C-CANCEL, for
     * ever (until 6 Dec 2026). 0: no limit.
     */
    private readonly stallMs = 0,
  ) {}

  /** True while the peer owes us the rest of a message (command or data set fragments). */
  get midMessage(): boolean {
    return this.dataSink !== undefined || this.commandParts.length > 0;
  }

  setPeerMaxPdu(n: number) {
    this.peerMaxPdu = n;
  }

  messageId(): number {
    const id = this.nextMessageId;
    this.nextMessageId = (this.nextMessageId % 0xffff) + 1;
    return id;
  }

  /**
   * Feed the PDVs of one P-DATA-TF PDU. Returns a promise when a streaming consumer must make room before the
   * next PDU is read, else undefined: most PDUs (commands, C-FIND answers, buffered data sets) are taken at once,
   * without a promise and a turn of the microtask queue each.
   */
  receive(pdvs: Pdv[], contextKnown: (id: number) => boolean): Promise<void> | undefined {
    for (let i = 0; i < pdvs.length; i++) {
      const room = this.receivePdv(pdvs[i]!, contextKnown);
      if (room)
        return i + 1 === pdvs.length ? room : room.then(() => this.receive(pdvs.slice(i + 1), contextKnown));
    }
    return undefined;
  }

  /** One PDV; a promise when its bytes went to a streaming consumer that is full. */
  private receivePdv(pdv: Pdv, contextKnown: (id: number) => boolean): Promise<void> | undefined {
    if (!contextKnown(pdv.contextId))
      throw new PduError(
        `a PDV on presentation context ${pdv.contextId}, which was not accepted`,
        AbortReason.UnexpectedPduParameter,
      );
    if (pdv.command) {
      if (this.dataSink)
        throw new PduError('a command fragment arrived inside a data set', AbortReason.UnexpectedPdu);
      if (this.commandContext !== -1 && this.commandContext !== pdv.contextId)
        throw new PduError(
          'command fragments on two presentation contexts',
          AbortReason.UnexpectedPduParameter,
        );
      this.commandContext = pdv.contextId;
      this.commandParts.push(pdv.data);
      this.commandBytes += pdv.data.length;
      if (this.commandBytes > MAX_COMMAND_BYTES) throw new PduError('a DIMSE command set larger than 64 KiB');
      if (pdv.last) this.commandDone();
      return undefined;
    }
    const sink = this.dataSink;
    if (!sink || pdv.contextId !== this.dataContext)
      throw new PduError('a data fragment that no command announced', AbortReason.UnexpectedPdu);
    let room: Promise<void> | undefined;
    if (sink.kind === 'stream') {
      // Queued before the end is marked, so the consumer sees every byte, then the end.
      if (pdv.data.length) room = sink.queue.push(pdv.data);
    } else {
      this.dataBytes += pdv.data.length;
      if (this.dataBytes <= sink.limit) this.dataParts.push(pdv.data);
      else if (!sink.tooLarge)
        throw new PduError(`a data set larger than ${sink.limit} bytes for this command`);
      // Past the limit: what was kept goes, the rest is only counted.
      else this.dataParts = [];
    }
    if (pdv.last) {
      this.dataSink = undefined;
      if (sink.kind === 'stream') sink.queue.end();
      else {
        const bytes = this.dataBytes;
        const data = bytes <= sink.limit ? Buffer.concat(this.dataParts) : undefined;
        this.dataParts = [];
        this.dataBytes = 0;
        if (data) sink.done(data);
        else sink.tooLarge?.(bytes);
      }
    }
    return room;
  }

  private commandDone() {
    const bytes = this.commandParts.length === 1 ? this.commandParts[0]! : Buffer.concat(this.commandParts);
    const ctx = this.commandContext;
    this.commandParts = [];
    this.commandBytes = 0;
    this.commandContext = -1;
    const cmd = decodeCommand(bytes);
    if (cmd.commandField & 0x8000 && cmd.messageIdBeingRespondedTo !== undefined) {
      const w = this.waiting.get(cmd.messageIdBeingRespondedTo);
      if (w) {
        if (!hasDataset(cmd)) {
          if (!isPending(cmd)) this.waiting.delete(cmd.messageIdBeingRespondedTo);
          w.resolve(cmd);
          return;
        }
        this.dataContext = ctx;
        this.dataSink = {
          kind: 'buffer',
          limit: 4 * 1024 * 1024,
          done: (data) => {
            if (!isPending(cmd)) this.waiting.delete(cmd.messageIdBeingRespondedTo!);
            w.resolve(cmd, data);
          },
        };
        return;
      }
      // A response to nothing we wait for (PS3.7 §9.3.1.2: Message ID Being Responded To names our request):
      // a protocol error that aborts the association. Until 6 Dec 2026 it was passed on as if it were a request
      // and, on a C-MOVE's association to its destination, the C-STORE it should have answered waited for its
      // response timeout (60 s).
      throw new PduError(
        `a response with an unknown Message ID (${cmd.messageIdBeingRespondedTo})`,
        AbortReason.NotSpecified,
      );
    }
    const sink = this.handler.command(ctx, cmd);
    if (hasDataset(cmd)) {
      if (!sink) throw new PduError('a data set for a command that takes none', AbortReason.UnexpectedPdu);
      this.dataContext = ctx;
      this.dataSink = sink;
    }
  }

  /** A streaming data set was cut off (peer gone, abort): its consumer sees the error. */
  failPending(err: Error) {
    this.endedBy ??= err.message;
    if (this.dataSink?.kind === 'stream') this.dataSink.queue.fail(err);
    this.dataSink = undefined;
    for (const w of this.waiting.values())
      w.resolve({ commandField: 0xffff, commandDataSetType: 0x0101, status: 0xa702 });
    this.waiting.clear();
  }

  /** Wait for the final response to a request of ours; `onPending` sees pending ones (C-MOVE-RSP). */
  awaitResponse(
    messageId: number,
    onPending?: (c: Command) => void,
  ): Promise<{ cmd: Command; data?: Buffer }> {
    return new Promise((resolve) => {
      this.waiting.set(messageId, {
        resolve: (cmd, data) => {
          if (isPending(cmd)) onPending?.(cmd);
          else resolve({ cmd, ...(data ? { data } : {}) });
        },
      });
    });
  }

  /** Send a message: its command, then its data set (bytes or a stream), as PDVs; messages never interleave. */
  send(contextId: number, cmd: Command, data?: Buffer | AsyncIterable<Buffer>): Promise<void> {
    const run = this.writeChain.then(() => this.write(contextId, encodeCommand(cmd), data));
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Send several messages, each an encoded command set (`encodeCommand`) and a data set, in order: each small
   * one is the same single P-DATA-TF PDU `send` makes of it, and consecutive small ones leave in one socket
   * write (C-FIND answers: one write per batch instead of one per match). A message too large for one PDU is
   * written as `send` writes it.
   */
  sendBatch(contextId: number, messages: readonly { command: Buffer; data: Buffer }[]): Promise<void> {
    const run = this.writeChain.then(() => this.writeBatch(contextId, messages));
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  /**
   * The most data bytes one PDV may carry: the peer's maximum PDU length less the PDV header, exactly (until 6 Dec
   * 2026 at least 64, so a peer asking for PDUs under 70 bytes got larger ones). usablePeerMaxPdu() holds for
   * every peer an association goes on with.
   */
  private fragmentSize(): number {
    const max = this.peerMaxPdu === 0 ? 1024 * 1024 : this.peerMaxPdu;
    return Math.max(max - PDV_HEADER_BYTES, 1);
  }

  /** Bytes of the single PDU holding a small message (command PDV and data PDV), if it fits in `frag`. */
  private static smallMessageBytes(command: Buffer, data: Buffer, frag: number): number | undefined {
    const n = 6 + 12 + command.length + data.length;
    return command.length + data.length + 12 <= frag ? n : undefined;
  }

  /** Write the single PDU of a small message (see smallMessageBytes) into `pdu` at `at`; returns the end. */
  private static putSmallMessage(pdu: Buffer, at: number, contextId: number, command: Buffer, data: Buffer) {
    const h = pdvHeader(contextId, true, true, command.length);
    h.copy(pdu, at, 0, 6);
    pdu.writeUInt32BE(12 + command.length + data.length, at + 2);
    h.copy(pdu, at + 6, 6, 12);
    command.copy(pdu, at + 12);
    const o = at + 12 + command.length;
    pdu.writeUInt32BE(data.length + 2, o);
    pdu[o + 4] = contextId;
    pdu[o + 5] = 0x02;
    data.copy(pdu, o + 6);
    return o + 6 + data.length;
  }

  private async writeBatch(contextId: number, messages: readonly { command: Buffer; data: Buffer }[]) {
    if (this.socket.destroyed) throw new Error('the association is closed');
    const frag = this.fragmentSize();
    let i = 0;
    while (i < messages.length) {
      // The run of small messages from i on goes out as one buffer.
      let bytes = 0;
      let j = i;
      for (; j < messages.length; j++) {
        const n = DimseConnection.smallMessageBytes(messages[j]!.command, messages[j]!.data, frag);
        if (n === undefined) break;
        bytes += n;
      }
      if (j === i) {
        await this.write(contextId, messages[i]!.command, messages[i]!.data);
        i++;
        continue;
      }
      const out = Buffer.allocUnsafe(bytes);
      let at = 0;
      for (; i < j; i++)
        at = DimseConnection.putSmallMessage(out, at, contextId, messages[i]!.command, messages[i]!.data);
      if (!this.socket.write(out)) await this.drain();
    }
  }

  private async write(contextId: number, command: Buffer, data?: Buffer | AsyncIterable<Buffer>) {
    if (this.socket.destroyed) throw new Error('the association is closed');
    const frag = this.fragmentSize();
    const small = Buffer.isBuffer(data) ? DimseConnection.smallMessageBytes(command, data, frag) : undefined;
    if (small !== undefined && Buffer.isBuffer(data)) {
      // A small message (C-FIND answer, response with an identifier): both PDVs in one PDU, one socket write.
      const pdu = Buffer.allocUnsafe(small);
      DimseConnection.putSmallMessage(pdu, 0, contextId, command, data);
      if (!this.socket.write(pdu)) await this.drain();
      return;
    }
    await this.writeBuffer(contextId, true, command, true, frag);
    if (data === undefined) return;
    if (Buffer.isBuffer(data)) {
      await this.writeBuffer(contextId, false, data, true, frag);
      return;
    }
    let carry: Buffer[] = [];
    let carryBytes = 0;
    for await (const chunk of data) {
      carry.push(chunk);
      carryBytes += chunk.length;
      if (carryBytes > frag) {
        const joined = carry.length === 1 ? carry[0]! : Buffer.concat(carry);
        const whole = Math.floor((joined.length - 1) / frag) * frag;
        await this.writeBuffer(contextId, false, joined.subarray(0, whole), false, frag);
        carry = [joined.subarray(whole)];
        carryBytes = joined.length - whole;
      }
    }
    await this.writeBuffer(
      contextId,
      false,
      carry.length === 1 ? carry[0]! : Buffer.concat(carry),
      true,
      frag,
    );
  }

  /** Write `bytes` as PDVs of at most `frag` bytes; the last one carries the last-fragment flag if `last`. */
  private async writeBuffer(contextId: number, command: boolean, bytes: Buffer, last: boolean, frag: number) {
    let o = 0;
    do {
      const n = Math.min(frag, bytes.length - o);
      const isLast = last && o + n >= bytes.length;
      this.socket.cork();
      this.socket.write(pdvHeader(contextId, command, isLast, n));
      const ok = this.socket.write(bytes.subarray(o, o + n));
      this.socket.uncork();
      o += n;
      if (!ok) await this.drain();
    } while (o < bytes.length);
  }

  /**
   * Wait until the peer has read what is buffered. Rejects when the association closed meanwhile (the rest of a
   * message has nowhere to go), or when the peer read nothing for `stallMs`: then the association is aborted
   * (A-ABORT, PS3.8 §7.3.1, if it can still go) and what waits on it fails with `dimse.no-response`.
   */
  private async drain(): Promise<void> {
    const socket = this.socket;
    await new Promise<void>((resolve, reject) => {
      if (socket.destroyed) return resolve();
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
      if (this.stallMs > 0)
        timer = setTimeout(() => {
          socket.off('drain', done);
          socket.off('close', done);
          const err = Object.assign(
            new Error(`the peer read nothing of what was sent for ${this.stallMs} ms`),
            { code: 'dimse.no-response' },
          );
          this.failPending(err);
          // The A-ABORT would queue behind what the peer does not read: the connection is closed instead.
          socket.destroy();
          reject(err);
        }, this.stallMs);
    });
    if (socket.destroyed) throw new Error('the association is closed');
  }

  /** Raw PDU write (association, release, abort). */
  writeRaw(pdu: Buffer): Promise<void> {
    const run = this.writeChain.then(async () => {
      if (this.socket.destroyed) return;
      // An association PDU to a peer gone or not reading: drain() has closed the connection; nothing is owed.
      if (!this.socket.write(pdu)) await this.drain().catch(() => undefined);
    });
    this.writeChain = run.catch(() => undefined);
    return run;
  }
}

export const isPending = (c: Command) => c.status === 0xff00 || c.status === 0xff01;
