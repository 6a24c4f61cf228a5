/** A webhook's or a delivery's state as a labelled badge (colour is never the only cue: the word is there). */
export function Badge(props: { value: string }) {
  return <span class={`badge badge-${props.value.replace(/[^a-z_]/g, "")}`}>{props.value.replace("_", " ")}</span>;
}
