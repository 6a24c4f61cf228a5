/** Opens a portal-session link: spends its single-use token (from the URL fragment) for a session. */
import { useEffect, useState } from "preact/hooks";
import type { Session } from "../api/session.js";
import { ProblemBox } from "../ui/problem.js";

/** Read once and wiped from the address bar at once, so it is neither bookmarked nor shown. */
function takeToken(): string | undefined {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token") ?? undefined;
  if (window.location.hash) window.history.replaceState(null, "", window.location.pathname);
  return token;
}

export function PortalOpening(props: {
  open: (token: string) => Promise<Session>;
  onOpened: (session: Session) => void;
}) {
  const [error, setError] = useState<unknown>(undefined);
  const [missing, setMissing] = useState(false);
  // Runs once: the token can be spent only once.
  useEffect(() => {
    const token = takeToken();
    if (!token) {
      setMissing(true);
      return;
    }
    props.open(token).then(props.onOpened, setError);
  }, []);
  return (
    <section class="narrow">
      <h1>Opening the portal</h1>
      {missing ? (
        <p>This link has no portal token. Ask the platform that sent you here for a new link.</p>
      ) : error ? (
        <>
          <ProblemBox error={error} />
          <p>Portal links work once and for a limited time: ask the platform that sent you here for a new one.</p>
        </>
      ) : (
        <p aria-live="polite">Signing you in…</p>
      )}
    </section>
  );
}
