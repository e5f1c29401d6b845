/** A byte stream being read ahead of its consumer; `close()` stops it and releases its source. */
export interface Prefetched extends AsyncIterable<Buffer> {
  /** For a stream that will not be consumed (to the end): stop reading and close the source. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start reading a byte stream ahead of its consumer, holding at most `maxBytes`: lets the next object's
 * decryption and disk reads overlap with sending the current one. A consumer that stops early closes the source.
 */
export function prefetch(source: AsyncIterable<Buffer>, maxBytes: number): Prefetched {
  const it = source[Symbol.asyncIterator]();
  const queue: Buffer[] = [];
  let queued = 0;
  let done = false;
  let closed: Promise<void> | undefined;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let pulling: Promise<void> | undefined;

  const pull = async () => {
    try {
      while (!done && queued < maxBytes) {
        const r = await it.next();
        if (r.done) done = true;
        else {
          queue.push(r.value);
          queued += r.value.length;
        }
        wake?.();
      }
    } catch (err) {
      failure = err;
      done = true;
      wake?.();
    } finally {
      pulling = undefined;
    }
  };
  pulling = pull();

  const close = (): Promise<void> => {
    closed ??= (async () => {
      const finished = done;
      done = true;
      queue.length = 0;
      queued = 0;
      await pulling;
      // A source that ended (or failed) has released what it held; one suspended mid-way is told to stop.
      if (!finished && failure === undefined) await it.return?.();
    })();
    return closed;
  };

  return {
    close,
    async *[Symbol.asyncIterator]() {
      let ended = false;
      try {
        for (;;) {
          if (queue.length > 0) {
            const b = queue.shift()!;
            queued -= b.length;
            if (!pulling && !done) pulling = pull();
            yield b;
            continue;
          }
          if (failure !== undefined) throw failure;
          if (done) {
            ended = true;
            return;
          }
          if (!pulling) pulling = pull();
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        if (!ended) await close();
      }
    },
  };
}

/**
 * Read the start of a byte stream, up to `maxBytes` (and the chunk that crosses it), before handing it on: a source
 * that fails in that part (an object failing its integrity check, all of it when it is no longer than `maxBytes`)
 * fails here, before its consumer has sent anything of it. The stream handed on yields what was read, then the rest.
 */
export async function readStart(
  source: AsyncIterable<Buffer>,
  maxBytes: number,
): Promise<AsyncIterable<Buffer>> {
  const it = source[Symbol.asyncIterator]();
  const held: Buffer[] = [];
  let bytes = 0;
  let ended = false;
  while (bytes < maxBytes) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    held.push(r.value);
    bytes += r.value.length;
  }
  return {
    async *[Symbol.asyncIterator]() {
      let finished = ended;
      try {
        while (held.length) yield held.shift()!;
        if (finished) return;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
        finished = true;
      } finally {
        // A consumer that stops early closes the source.
        if (!finished) await it.return?.();
      }
    },
  };
}
