import type { ReactNode } from 'react';
import { ApiError } from '../api/client';
import { Unreachable } from '../connection';

export function Loading({ what }: { what: string }) {
  return (
    <p className="state" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <p className="state empty" role="status">
      {children}
    </p>
  );
}

/**
 * An empty page past the last one a list still reaches (an old address or bookmark, entries gone since), with the
 * way back to its first page.
 */
export function PastTheEnd({ what, first }: { what: string; first: () => void }) {
  return (
    <Empty>
      No {what} this far.{' '}
      <button type="button" onClick={first}>
        First page
      </button>
    </Empty>
  );
}

/**
 * What kind of answer an error is, as its heading says it: the server's refusals (a request it will not do, one it
 * cannot read, something that is not there) are not failures, and "Something went wrong" is kept for what did go
 * wrong (a 5xx, no answer). Until 7 Dec 2026 every error but a 403 was headed "Something went wrong".
 */
export function errorHeading(error: unknown): string {
  if (error instanceof Unreachable) return 'Not reachable';
  if (!(error instanceof ApiError)) return 'Something went wrong';
  if (error.status === 401) return 'Not signed in';
  if (error.status === 403) return 'Not permitted';
  if (error.status === 404 || error.status === 410) return 'Not found';
  if (error.status === 409) return 'Refused';
  if (error.status >= 400 && error.status < 500) return 'Not accepted';
  return 'Something went wrong';
}

/**
 * An error as the server named it (problem+json code and message). `id` lets the field it is about point to it
 * (aria-describedby), so that it is read with the field.
 */
export function ErrorState({ error, id }: { error: unknown; id?: string }) {
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  const denied = error instanceof ApiError && error.status === 403;
  return (
    <div className={`state error${denied ? ' denied' : ''}`} role="alert" {...(id ? { id } : {})}>
      <strong>{errorHeading(error)}</strong>
      <span>{message}</span>
      {code ? <code>{code}</code> : null}
    </div>
  );
}
