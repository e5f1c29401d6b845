import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { MllpDecoder, mllpFrame } from '../../src/transports/hl7/mllp-decoder.js';

/**
 * A small MLLP client over node:net (or node:tls): send frames, or raw bytes to test framing, and read the
 * replies in order.
 */
export class MllpClient {
  private readonly decoder = new MllpDecoder(64 * 1024 * 1024);
  private readonly replies: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.decoder.push(chunk)) if (ev.kind === 'frame') this.replies.push(ev.payload);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, tls?: ConnectionOptions): Promise<MllpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = tls
        ? tlsConnect({ host: '127.0.0.1', port, ...tls }, () => resolve(s))
        : netConnect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    return new MllpClient(socket);
  }

  /** Send one message and wait for its ACK. */
  async send(message: string): Promise<string> {
    this.socket.write(mllpFrame(message));
    return this.next();
  }

  /** Write raw bytes (frames split or joined as the test wants). */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next reply, in order, read as UTF-8. */
  async next(timeoutMs = 10_000): Promise<string> {
    return (await this.nextBytes(timeoutMs)).toString('utf8');
  }

  /** The next reply's bytes, in order (an ACK in the character set its MSH-18 names). */
  async nextBytes(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0) {
      if (this.closed) throw new Error('the MLLP connection closed before a reply arrived');
      if (Date.now() > deadline) throw new Error('no MLLP reply within the timeout');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.replies.shift()!;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
