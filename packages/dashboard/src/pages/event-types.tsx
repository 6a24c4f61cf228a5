/** The event catalog: what each event means, its payload's JSON Schema and an example. */
import { eventTypes } from "../api/catalog.js";
import type { Session } from "../api/session.js";
import { CodeBlock } from "../ui/code-block.js";
import { useLoad } from "../ui/hooks.js";
import { Loading, ProblemBox } from "../ui/problem.js";

export function EventTypesPage(props: { session: Session }) {
  const catalog = useLoad(() => eventTypes(props.session.client), [props.session]);
  return (
    <section>
      <h1>Event types</h1>
      <ProblemBox error={catalog.error} onRetry={catalog.reload} />
      {!catalog.data && !catalog.error && <Loading />}
      {catalog.data?.map((type) => (
        <article class="card" key={type.name}>
          <h2>
            <code>{type.name}</code>
          </h2>
          <p>{type.description}</p>
          <details>
            <summary>Example</summary>
            <CodeBlock label={`Example of ${type.name}`} value={type.example} />
          </details>
          <details>
            <summary>JSON Schema</summary>
            <CodeBlock label={`JSON Schema of ${type.name}`} value={type.schema} />
          </details>
        </article>
      ))}
    </section>
  );
}
