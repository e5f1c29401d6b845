import { onlineManager } from '@tanstack/react-query';
import { useSyncExternalStore } from 'react';

/**
 * No answer from Custos: the request did not reach the server or its answer did not come back (the server is down
 * or restarting, or the network between is). Not an ApiError: the server said nothing, so nothing is known about the
 * session or the request, and asking again later may work.
 */
export class Unreachable extends Error {
  constructor() {
    super('Custos is not reachable: the server did not answer. Try again once it is back.');
  }
}

/**
 * Whether an answer is a reverse proxy's or load balancer's (nginx, HAProxy, a cloud balancer) saying that Custos
 * behind it did not answer: 502 Bad Gateway, 503 Service Unavailable or 504 Gateway Timeout (RFC 9110 §15.6.3-5),
 * usually with an HTML page, while Custos restarts or is down. Custos itself answers every error as
 * application/problem+json (its own 503, e.g. index.unavailable with Retry-After, names what is wrong and is shown
 * as such). Until 7 Dec 2026 such an answer was taken for Custos's and the screen said "Something went wrong".
 */
export function fromGateway(response: Response): boolean {
  if (response.status !== 502 && response.status !== 503 && response.status !== 504) return false;
  const type = response.headers.get('Content-Type')?.split(';')[0]?.trim().toLowerCase();
  return type !== 'application/problem+json';
}

/** How often the server is asked whether it answers again while it does not. */
const PROBE_MS = 2000;
let probe: ReturnType<typeof setTimeout> | undefined;

/**
 * A request got no answer. TanStack Query's online state is set off: its queries, retried on Unreachable
 * (retryUnreachable), wait instead of failing, so each screen keeps what it shows and the session is kept; the
 * server's health endpoint (no session, no data) is asked until it answers.
 */
export function noAnswer(): void {
  onlineManager.setOnline(false);
  probe ??= setTimeout(() => void askServer(), PROBE_MS);
}

/** An answer came from Custos (whatever its status): the queries that waited carry on. */
export function answered(): void {
  if (!onlineManager.isOnline()) onlineManager.setOnline(true);
}

async function askServer(): Promise<void> {
  let answer: Response | undefined;
  try {
    answer = await fetch('/api/health', { cache: 'no-store', credentials: 'omit' });
  } catch {
    answer = undefined;
  }
  if (!answer || fromGateway(answer)) {
    // Still no answer from Custos (the proxy before it may answer): ask again.
    probe = setTimeout(() => void askServer(), PROBE_MS);
    return;
  }
  probe = undefined;
  answered();
}

/** The retry rule of queries that retry nothing else: an Unreachable is asked again (once the server answers). */
export const retryUnreachable = (_failures: number, err: unknown) => err instanceof Unreachable;

const subscribe = (changed: () => void) => onlineManager.subscribe(changed);
const isOnline = () => onlineManager.isOnline();

/**
 * Says so while the server does not answer. Until 7 Dec 2026 each screen showed the browser's "Failed to fetch",
 * and a console opened or reloaded meanwhile showed the sign-in form as if the session had ended.
 */
export function ConnectionNotice() {
  const online = useSyncExternalStore(subscribe, isOnline);
  if (online) return null;
  return (
    <p className="connection-lost" role="alert">
      <strong>Custos is not reachable; retrying…</strong> The console carries on where it was when the server
      answers again.
    </p>
  );
}
