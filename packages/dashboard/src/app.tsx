/** The shell: branding, sign-in or portal opening, the navigation the client's scopes allow, and the pages. */
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Branding, can, signOut as endSession, openPortal, type Session, signIn } from "./api/session.js";
import { AccessLogPage } from "./pages/access-log.js";
import { DeliveryPage } from "./pages/delivery.js";
import { EventTypesPage } from "./pages/event-types.js";
import { EventsPage } from "./pages/events.js";
import { OverviewPage } from "./pages/overview.js";
import { PortalOpening } from "./pages/portal.js";
import { SignInPage } from "./pages/sign-in.js";
import { WebhookPage } from "./pages/webhook.js";
import { WebhooksPage } from "./pages/webhooks.js";
import { Link, navigate, useRoute } from "./router.js";

const DEFAULT_BRANDING: Branding = { product_name: "carehooks", logo_url: null, accent_color: "#0b5cad" };

interface NavItem {
  readonly href: string;
  readonly label: string;
  readonly scope: string;
}

const NAV: readonly NavItem[] = [
  { href: "/webhooks", label: "Webhooks", scope: "webhooks:read" },
  { href: "/events", label: "Events", scope: "webhooks:read" },
  { href: "/event-types", label: "Event types", scope: "webhooks:read" },
  { href: "/access-log", label: "Access log", scope: "audit:read" },
  { href: "/overview", label: "Overview", scope: "webhooks:read" },
];

function applyBranding(branding: Branding): void {
  // Through the CSSOM: the CSP allows no inline style, and this is not one.
  document.documentElement.style.setProperty("--accent", branding.accent_color);
  document.title = `${branding.product_name} dashboard`;
}

export function App() {
  const [branding, setBranding] = useState<Branding>(DEFAULT_BRANDING);
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const route = useRoute();

  useEffect(() => {
    fetch("/dashboard/config.json")
      .then((response) => (response.ok ? response.json() : undefined))
      .then((config: { branding?: Branding } | undefined) => config?.branding && setBranding(config.branding))
      .catch(() => {});
  }, []);
  // After an in-app navigation, focus moves to the new page's content, as a page load would put it there.
  const [firstPath] = useState(route.path);
  useEffect(() => {
    if (route.path !== firstPath) document.getElementById("main")?.focus({ preventScroll: false });
  }, [route.path, firstPath]);
  const shown = session?.branding ?? branding;
  useEffect(() => applyBranding(shown), [shown]);

  const ended = (reason: string) => {
    setSession(undefined);
    setNotice(reason);
  };
  const signOut = () => {
    if (session) void endSession(session);
    setSession(undefined);
    setNotice(
      session?.kind === "portal" ? "You left the portal: open a new link to come back." : "You are signed out.",
    );
    navigate("/", { replace: true });
  };

  if (route.path === "/portal" && !session) {
    return (
      <Frame branding={shown}>
        <PortalOpening
          open={(token) => openPortal(token, ended)}
          onOpened={(opened) => {
            setNotice(undefined);
            setSession(opened);
            navigate("/webhooks", { replace: true });
          }}
        />
      </Frame>
    );
  }

  if (!session) {
    return (
      <Frame branding={shown}>
        <SignInPage
          notice={notice}
          signIn={(id, secret) => signIn(id, secret, ended)}
          onSignedIn={(opened) => {
            setNotice(undefined);
            setSession(opened);
            // The first page this client may open (Page redirects from "/"); a deep link is kept.
            if (route.path === "/portal") navigate("/", { replace: true });
          }}
        />
      </Frame>
    );
  }

  const allowed = NAV.filter((item) => can(session, item.scope));
  return (
    <Frame
      branding={shown}
      nav={
        <nav aria-label="Main">
          <ul>
            {allowed.map((item) => (
              <li key={item.href}>
                <Link href={item.href} current={route.path.startsWith(item.href)}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      }
      account={
        <div class="account">
          <span class="muted" title="Signed in as">
            {session.kind === "portal" ? `Portal${session.readOnly ? " (read-only)" : ""}` : session.clientId}
          </span>
          <button type="button" class="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      }
    >
      <Page session={session} path={route.path} query={route.query} fallback={allowed[0]?.href} />
    </Frame>
  );
}

function Page(props: { session: Session; path: string; query: URLSearchParams; fallback: string | undefined }) {
  const { session, path } = props;
  const match = (pattern: RegExp) => pattern.exec(path)?.[1];
  const readable = can(session, "webhooks:read");
  if (readable && path === "/webhooks") return <WebhooksPage session={session} />;
  const webhookId = match(/^\/webhooks\/([^/]+)$/);
  if (readable && webhookId) return <WebhookPage session={session} id={decodeURIComponent(webhookId)} />;
  const deliveryId = match(/^\/deliveries\/([^/]+)$/);
  if (readable && deliveryId) return <DeliveryPage session={session} id={decodeURIComponent(deliveryId)} />;
  if (readable && path === "/events") return <EventsPage session={session} />;
  if (readable && path === "/event-types") return <EventTypesPage session={session} />;
  if (can(session, "audit:read") && path === "/access-log") return <AccessLogPage session={session} />;
  if (readable && path === "/overview") return <OverviewPage session={session} />;
  if (!props.fallback) {
    return (
      <section>
        <h1>Nothing to show</h1>
        <p>This client holds none of the scopes the dashboard's pages need (webhooks:read, audit:read).</p>
      </section>
    );
  }
  if (path === "/" || path === "/portal") return <Redirect to={props.fallback} />;
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        There is no page at this address, or this client may not open it. Go to{" "}
        <Link href={props.fallback}>the first page</Link>.
      </p>
    </section>
  );
}

/** Navigates after rendering: changing the route while rendering would re-render the parent mid-render. */
function Redirect(props: { to: string }) {
  useEffect(() => navigate(props.to, { replace: true }), [props.to]);
  return null;
}

function Frame(props: {
  branding: Branding;
  nav?: ComponentChildren;
  account?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          {props.branding.logo_url && <img src={props.branding.logo_url} alt="" width={28} height={28} />}
          <span>{props.branding.product_name}</span>
        </div>
        {props.nav}
        {props.account}
      </header>
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}
