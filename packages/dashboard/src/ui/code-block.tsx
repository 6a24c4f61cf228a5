/** JSON shown in a scrolling block that the keyboard can reach (a scrollable region must be focusable). */
export function CodeBlock(props: { label: string; value: unknown }) {
  return (
    <section aria-label={props.label}>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling block must take focus so keyboard users can scroll it. */}
      <pre tabIndex={0}>{JSON.stringify(props.value, null, 2)}</pre>
    </section>
  );
}
