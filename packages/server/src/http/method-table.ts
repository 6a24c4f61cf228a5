/** Which methods each route pattern answers, so a known path with the wrong method is a 405, not a 404. */
export class MethodTable {
  readonly #routes: { pattern: RegExp; method: string }[] = [];

  add(method: string | string[], url: string): void {
    const pattern = new RegExp(
      `^${url
        .split("/")
        .map((part) => (part.startsWith(":") || part === "*" ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
        .join("/")}/?$`,
    );
    for (const one of Array.isArray(method) ? method : [method]) this.#routes.push({ pattern, method: one });
  }

  allowed(path: string): string[] {
    const found = this.#routes.filter((route) => route.pattern.test(path)).map((route) => route.method);
    return [...new Set(found)].sort();
  }
}
