import { Navigate, NavLink, Route, Routes } from 'react-router';
import { useAuth } from './auth';
import { SignOut } from './components/SignOut';
import { ErrorState, Loading } from './components/States';
import { Audit } from './pages/Audit';
import { Dashboard } from './pages/Dashboard';
import { AccountSetup, Login } from './pages/Login';
import { QuarantineItem, QuarantineQueue } from './pages/Quarantine';
import { Studies } from './pages/Studies';
import { Study } from './pages/Study';
import { Users } from './pages/Users';
import { SCREEN_LABELS, screensFor, STUDY_PAGE_ROLES, type Screen } from './roles';

const PATHS: Record<Screen, string> = {
  dashboard: '/dashboard',
  studies: '/studies',
  audit: '/audit',
  quarantine: '/quarantine',
  users: '/users',
};

export function App() {
  const { session, loading } = useAuth();
  if (loading) return <Loading what="your session" />;
  if (!session) return <Login />;
  if (session.mustChangePassword || session.mfaEnrollmentRequired)
    return (
      <AccountSetup mustChangePassword={!!session.mustChangePassword} mfa={!!session.mfaEnrollmentRequired} />
    );
  const screens = screensFor(session.role);
  const allowed = (s: Screen) => screens.includes(s);
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span className="brand">Custos</span>
        <nav aria-label="Main">
          <ul>
            {screens.map((s) => (
              <li key={s}>
                <NavLink to={PATHS[s]}>{SCREEN_LABELS[s]}</NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span>
            {session.displayName || session.username} <span className="role">{session.role}</span>
          </span>
          <SignOut />
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes>
          <Route
            path="/"
            element={screens[0] ? <Navigate to={PATHS[screens[0]]} replace /> : <NoScreens />}
          />
          {allowed('dashboard') ? <Route path="/dashboard" element={<Dashboard />} /> : null}
          {allowed('studies') ? <Route path="/studies" element={<Studies />} /> : null}
          {STUDY_PAGE_ROLES.includes(session.role) ? (
            <Route path="/studies/:uid" element={<Study />} />
          ) : null}
          {allowed('audit') ? <Route path="/audit" element={<Audit />} /> : null}
          {allowed('quarantine') ? <Route path="/quarantine" element={<QuarantineQueue />} /> : null}
          {allowed('quarantine') ? <Route path="/quarantine/:id" element={<QuarantineItem />} /> : null}
          {allowed('users') ? <Route path="/users" element={<Users />} /> : null}
          <Route path="*" element={<NotHere />} />
        </Routes>
      </main>
    </div>
  );
}

function NoScreens() {
  return <ErrorState error={new Error('Your role has no screen in the console.')} />;
}

function NotHere() {
  return (
    <section aria-labelledby="nf-title">
      <h1 id="nf-title">Not available</h1>
      <p>This page does not exist, or your role does not offer it.</p>
    </section>
  );
}
