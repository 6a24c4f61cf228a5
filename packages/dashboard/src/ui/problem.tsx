/** An API error in words, with the request id to quote; and the empty state of a list. */
import type { ComponentChildren } from "preact";
import { describeProblem } from "../api/errors.js";

export function ProblemBox(props: { error: unknown; onRetry?: () => void }) {
  if (props.error === undefined || props.error === null) return null;
  const problem = describeProblem(props.error);
  return (
    <div class="problem" role="alert">
      <strong>{problem.title}</strong>
      <p>{problem.detail}</p>
      {problem.requestId && (
        <p class="muted">
          Request id: <code>{problem.requestId}</code> (quote it when reporting this)
        </p>
      )}
      {props.onRetry && (
        <button type="button" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p>
        <strong>{props.title}</strong>
      </p>
      {props.children}
    </div>
  );
}

export function Loading() {
  return (
    <p class="muted" aria-live="polite">
      Loading…
    </p>
  );
}
