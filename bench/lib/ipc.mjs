// The child's side of forkChild (procs.mjs). The parent calls { id, cmd, ...args }; the child answers
// { id, data } or { id, error }. After answering `close` the child exits; it also closes and exits
// when the parent goes away or on SIGINT/SIGTERM (Ctrl-C reaches the whole process group), so a
// child that owns a Redis queue or a PostgreSQL schema removes it on every exit path.

// Long enough to stop a worker and remove a queue or schema; the harness waits as long (stopPeers).
export const CLOSE_GRACE_MS = 10_000;

export function answerCalls(handlers, ready = {}) {
  let closing;
  const closeOnce = () => {
    closing ??= Promise.resolve().then(() => handlers.close?.());
    return closing;
  };
  process.on("message", async ({ id, cmd, ...args }) => {
    let reply;
    try {
      const handler = cmd === "close" ? closeOnce : handlers[cmd];
      if (!handler) throw new Error(`unknown command ${cmd}`);
      reply = { id, data: await handler(args) };
    } catch (error) {
      reply = { id, error: String(error?.stack ?? error) };
    }
    process.send(reply, () => {
      if (cmd === "close") process.exit(0);
    });
  });
  const shutdown = () => {
    const timer = setTimeout(() => process.exit(1), CLOSE_GRACE_MS);
    closeOnce()
      .catch((error) => process.stderr.write(`${process.argv[1]}: close failed: ${error?.stack ?? error}\n`))
      .finally(() => {
        clearTimeout(timer);
        process.exit(0);
      });
  };
  process.on("disconnect", shutdown);
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, shutdown);
  process.send({ type: "ready", data: ready });
}
