import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { ApiError } from './api/client';
import { App } from './App';
import { AuthProvider } from './auth';
import { ConnectionNotice, Unreachable } from './connection';
import './styles.css';

/**
 * A 401 from any call may mean the session ended (idle or absolute timeout, deactivation, a password reset by an
 * administrator): the session is asked for again, and when it is gone the console shows the sign-in form and
 * forgets the data it held (auth.tsx). A 401 that does not end the session (a wrong current password) changes
 * nothing. Until 6 Dec 2026 each screen showed its own error and the console still looked signed in.
 */
const sessionMayHaveEnded = (err: unknown, key?: readonly unknown[]) => {
  if (err instanceof ApiError && err.status === 401 && key?.[0] !== 'me')
    void queryClient.invalidateQueries({ queryKey: ['me'] });
};

const queryClient: QueryClient = new QueryClient({
  queryCache: new QueryCache({ onError: (err, query) => sessionMayHaveEnded(err, query.queryKey) }),
  mutationCache: new MutationCache({ onError: (err) => sessionMayHaveEnded(err) }),
  defaultOptions: {
    queries: {
      // A refusal or a missing resource will not change by asking again. No answer at all is asked again for as
      // long as it takes: the query waits (paused) until the server answers (connection.tsx).
      retry: (n, err) =>
        err instanceof Unreachable || (!(err instanceof ApiError && err.status < 500) && n < 2),
      retryDelay: (n, err) => (err instanceof Unreachable ? 1000 : Math.min(1000 * 2 ** n, 30_000)),
      refetchOnWindowFocus: false,
    },
    // A change is sent when asked for, or fails there and then with Unreachable: never held back while the server
    // is away and sent later, when the person may have left the screen.
    mutations: { networkMode: 'always' },
  },
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <AuthProvider>
          <ConnectionNotice />
          <App />
        </AuthProvider>
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
);
