/** Path routing under /dashboard (the server answers index.html for every page path). */
import { type ComponentChildren, h } from "preact";
import { useEffect, useState } from "preact/hooks";

export const BASE = "/dashboard";

function current(): string {
  const path = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length) : "/";
  return path === "" ? "/" : path;
}

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (options.replace) window.history.replaceState(null, "", BASE + path);
  else window.history.pushState(null, "", BASE + path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** The page path (after /dashboard) and its query, re-rendering on navigation. */
export function useRoute(): { path: string; query: URLSearchParams } {
  const [route, setRoute] = useState(() => ({ path: current(), query: new URLSearchParams(window.location.search) }));
  useEffect(() => {
    const update = () => setRoute({ path: current(), query: new URLSearchParams(window.location.search) });
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return route;
}

export function Link(props: { href: string; class?: string; children: ComponentChildren; current?: boolean }) {
  return h(
    "a",
    {
      href: BASE + props.href,
      class: props.class,
      "aria-current": props.current ? "page" : undefined,
      onClick: (event: MouseEvent) => {
        // Let the browser open new tabs and windows as usual.
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(props.href);
      },
    },
    props.children,
  );
}
