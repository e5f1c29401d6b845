/**
 * Whether the PostgreSQL index answers, as the operator needs to know it: told once when it stops answering (a
 * restart, a failover, a lost network), told once when it answers again, and asked by /api/health.
 *
 * It goes down when the pool reports that PostgreSQL closed an idle connection, when a statement fails because
 * the server cannot be reached, or when a health check's probe fails. While down it probes (`select 1` on a new
 * pooled connection) until one succeeds; a restart that is over in a second is then reported over in a second,
 * not when the next request happens to come.
 */
export class PostgresReachability {
  private downSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checked: { at: number; answer: Promise<boolean> } | undefined;
  private closed = false;

  constructor(
    /** Resolves when PostgreSQL answered a trivial statement; rejects otherwise. */
    private readonly probe: () => Promise<unknown>,
    private readonly notice: (line: string) => void = () => {},
    private readonly options: {
      /** First probe after a loss, then every `everyMs`. */
      firstMs?: number;
      everyMs?: number;
      /** A probe that takes longer has failed (a server that accepts nothing hangs a connect). */
      timeoutMs?: number;
      /** How long a health check's answer stands for the checks after it. */
      reuseMs?: number;
      now?: () => number;
    } = {},
  ) {}

  private now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }

  get reachable(): boolean {
    return this.downSince === undefined;
  }

  /** The server could not be reached (`err` says why): told once, and probed until it answers. */
  lost(err: unknown): void {
    if (this.closed || this.downSince !== undefined) return;
    this.downSince = this.now();
    this.checked = undefined;
    this.notice(
      `the PostgreSQL index cannot be reached (${describe(err)}); requests that need it are answered 503 until it answers again`,
    );
    this.schedule(this.options.firstMs ?? 500);
  }

  /**
   * For /api/health: whether it answers now. One probe serves the checks that come within `reuseMs`, unless the
   * answer changed meanwhile (a loss reported, or the probing found it back).
   */
  async check(): Promise<boolean> {
    const now = this.now();
    if (!this.checked || now - this.checked.at >= (this.options.reuseMs ?? 1000))
      this.checked = { at: now, answer: this.tryOnce() };
    return this.checked.answer;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.tryOnce().then((ok) => {
        if (!ok && this.downSince !== undefined) this.schedule(this.options.everyMs ?? 2000);
      });
    }, ms);
    // A server stopping does not wait for the database to come back.
    this.timer.unref();
  }

  private async tryOnce(): Promise<boolean> {
    let timeout: NodeJS.Timeout | undefined;
    const ms = this.options.timeoutMs ?? 2000;
    try {
      await Promise.race([
        this.probe(),
        new Promise((_, reject) => {
          timeout = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
        }),
      ]);
    } catch (err) {
      this.lost(err);
      return false;
    } finally {
      clearTimeout(timeout);
    }
    if (this.downSince !== undefined && !this.closed) {
      const seconds = Math.max(0, Math.round((this.now() - this.downSince) / 1000));
      this.downSince = undefined;
      this.checked = undefined;
      clearTimeout(this.timer);
      this.notice(`the PostgreSQL index answers again (it could not be reached for ${seconds} s)`);
    }
    return true;
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return `${typeof code === 'string' ? code : 'no code'}: ${err.message}`;
}
