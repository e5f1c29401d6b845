import { useMutation } from '@tanstack/react-query';
import { useAuth } from '../auth';
import { ErrorState } from './States';

/**
 * Sign out, sent once: the button waits while the request is pending (a second click would otherwise be sent
 * after the session had ended), and a refusal is shown where it was asked. Until 7 Dec 2026 it stayed enabled
 * and an error was dropped unseen. No answer at all (Custos restarting) keeps the session, as the connection
 * notice says.
 */
export function SignOut({ className }: { className?: string }) {
  const { logout } = useAuth();
  const signOut = useMutation({ mutationFn: logout });
  return (
    <>
      <button
        type="button"
        {...(className ? { className } : {})}
        onClick={() => signOut.mutate()}
        disabled={signOut.isPending}
      >
        Sign out
      </button>
      {signOut.isError ? <ErrorState error={signOut.error} /> : null}
    </>
  );
}
