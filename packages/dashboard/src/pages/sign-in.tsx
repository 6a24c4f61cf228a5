/** Sign in with an API client's id and secret; nothing is stored beyond this tab's memory. */
import { useState } from "preact/hooks";
import type { Session } from "../api/session.js";
import { ProblemBox } from "../ui/problem.js";

export function SignInPage(props: {
  notice: string | undefined;
  signIn: (clientId: string, clientSecret: string) => Promise<Session>;
  onSignedIn: (session: Session) => void;
}) {
  const [clientId, setClientId] = useState("");
  const [secret, setSecret] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      props.onSignedIn(await props.signIn(clientId.trim(), secret));
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  return (
    <section class="narrow">
      <h1>Sign in</h1>
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      <p class="muted">
        Use an API client of your business (<code>carehooks clients create</code> makes one). The session lives in this
        tab only.
      </p>
      <form onSubmit={submit}>
        <label>
          Client ID
          <input
            name="client_id"
            autoComplete="username"
            required
            value={clientId}
            onInput={(event) => setClientId(event.currentTarget.value)}
          />
        </label>
        <label>
          Client secret
          <input
            name="client_secret"
            type="password"
            autoComplete="current-password"
            required
            value={secret}
            onInput={(event) => setSecret(event.currentTarget.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <ProblemBox error={error} />
    </section>
  );
}
