import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect, type ReactNode } from 'react';
import { api, ApiError, unwrap, type Schemas } from './api/client';
import { retryUnreachable, Unreachable } from './connection';

export type Session = Schemas['Session'];

interface AuthValue {
  session: Session | null;
  loading: boolean;
  refresh: () => Promise<void>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<AuthValue | null>(null);

/** Who is signed in, from GET /api/auth/me (the session cookie); null when nobody is. */
export function AuthProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const me = useQuery({
    queryKey: ['me'],
    queryFn: async () => {
      try {
        return unwrap(await api.GET('/api/auth/me'));
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return null;
        throw err;
      }
    },
    // No answer is not "signed out": the session stays (or, at the first load, is asked for until the server
    // answers) rather than the sign-in form being shown.
    retry: retryUnreachable,
    staleTime: 60_000,
  });
  // Signed out (here, elsewhere, or by the session's end): nothing of the session's data stays in memory.
  const signedIn = !!me.data;
  useEffect(() => {
    if (!signedIn) qc.removeQueries({ predicate: (q) => q.queryKey[0] !== 'me' });
  }, [signedIn, qc]);
  const value: AuthValue = {
    session: me.data ?? null,
    loading: me.isPending,
    refresh: async () => {
      await qc.invalidateQueries({ queryKey: ['me'] });
    },
    logout: async () => {
      try {
        const r = await api.POST('/api/auth/logout');
        // A refusal or failure (Custos's own 503 while its index database is away) has not ended the session: it
        // is shown, and the console stays signed in. Until 7 Dec 2026 any answer was taken for signed out, and the
        // sign-in form was shown while the session lived on. A 401 is a session already ended.
        if (!r.response.ok && r.response.status !== 401) unwrap(r);
      } catch (err) {
        // The session cannot be ended while the server does not answer: still signed in, as the notice says why.
        if (err instanceof Unreachable) return;
        throw err;
      }
      // Signed out first, then nothing of the session's data stays in memory. (clear() would also detach
      // this provider's own query from the cache, and the page would not notice the sign-out.)
      qc.setQueryData(['me'], null);
      qc.removeQueries({ predicate: (q) => q.queryKey[0] !== 'me' });
    },
  };
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const v = useContext(AuthContext);
  if (!v) throw new Error('useAuth outside AuthProvider');
  return v;
}
