/** Whether a page's event stream is connected, said in words (and announced when it changes). */
export function LiveState(props: { live: boolean }) {
  return (
    <span class={props.live ? "live on" : "live"} aria-live="polite">
      {props.live ? "Live" : "Not live (reconnecting)"}
    </span>
  );
}
