/** One object's place in the queue of objects with its SOP Instance UID. */
export interface Turn {
  /** Settles once every object that took a turn for this UID before it has finished. */
  ready: Promise<void>;
  /** Ends this turn (at most once matters; later calls do nothing). */
  done(): void;
}

/**
 * Objects with the same SOP Instance UID take turns through the duplicate and conflict checks and their commit,
 * in the order their UIDs were read: two parts of one STOW-RS request (or two C-STOREs) naming the same instance
 * are decided one after the other, the first stored and the second compared with it, on every backend. Objects
 * with other UIDs never wait. In-process only: the index transactions still guard other processes.
 */
export class InstanceTurns {
  private readonly tails = new Map<string, Promise<void>>();

  take(sopInstanceUid: string): Turn {
    const before = this.tails.get(sopInstanceUid) ?? Promise.resolve();
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const tail = before.then(() => finished);
    this.tails.set(sopInstanceUid, tail);
    return {
      ready: before,
      done: () => {
        finish();
        if (this.tails.get(sopInstanceUid) === tail) this.tails.delete(sopInstanceUid);
      },
    };
  }

  /** UIDs with a turn taken and not yet done (for tests: nothing is left behind). */
  get size(): number {
    return this.tails.size;
  }
}
