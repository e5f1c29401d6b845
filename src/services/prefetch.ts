/**
 * Start reading a byte stream ahead of its consumer, holding at most `maxBytes`: lets the next object's
 * decryption and disk reads overlap with sending the current one.
 */
export function prefetch(source: AsyncIterable<Buffer>, maxBytes: number): AsyncIterable<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const queue: Buffer[] = [];
  let queued = 0;
  let done = false;
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

  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) {
          const b = queue.shift()!;
          queued -= b.length;
          if (!pulling && !done) pulling = pull();
          yield b;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (done) return;
        if (!pulling) pulling = pull();
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    },
  };
}
