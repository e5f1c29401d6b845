import type { ReactNode } from 'react';
import { ApiError } from '../api/client';

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
 * An error as the server named it (problem+json code and message). `id` lets the field it is about point to it
 * (aria-describedby), so that it is read with the field.
 */
export function ErrorState({ error, id }: { error: unknown; id?: string }) {
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  const denied = error instanceof ApiError && error.status === 403;
  return (
    <div className={`state error${denied ? ' denied' : ''}`} role="alert" {...(id ? { id } : {})}>
      <strong>{denied ? 'Not permitted' : 'Something went wrong'}</strong>
      <span>{message}</span>
      {code ? <code>{code}</code> : null}
    </div>
  );
}
