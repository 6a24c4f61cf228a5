/**
 * `/openapi.json` and `/docs`: the OpenAPI document generated from the route
 * schemas, and an interactive reference (Swagger UI: search by tag, try a
 * call with a token) served from this server's own copy of its assets, with
 * a Content-Security-Policy that names them: nothing is loaded from elsewhere.
 */
import swaggerUi from "@fastify/swagger-ui";
import type { App } from "./context.js";

export async function docsRoutes(app: App): Promise<void> {
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  await app.register(swaggerUi, {
    routePrefix: "/docs",
    // Everything from this server; inline styles are how Swagger UI lays out its panels.
    staticCSP: {
      "default-src": ["'self'"],
      "script-src": ["'self'"],
      "style-src": ["'self'", "'unsafe-inline'"],
      "img-src": ["'self'", "data:"],
      "connect-src": ["'self'"],
      "font-src": ["'self'"],
      "form-action": ["'self'"],
      "frame-ancestors": ["'none'"],
      "object-src": ["'none'"],
      "base-uri": ["'self'"],
    },
    uiConfig: {
      deepLinking: true,
      filter: true,
      tryItOutEnabled: true,
      persistAuthorization: false,
      displayOperationId: true,
      // No badge from validator.swagger.io: nothing is fetched from elsewhere.
      validatorUrl: null,
      docExpansion: "list",
    },
  });
}
