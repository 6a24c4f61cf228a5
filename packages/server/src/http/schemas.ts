/** Schemas shared by several resources: errors, list pages, messages. */
import { type TSchema, Type } from "@sinclair/typebox";

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ examples: ["INVALID_REQUEST"] }),
      message: Type.String(),
      request_id: Type.String(),
    }),
  },
  { title: "Error", description: "Every error has this shape; `code` is one of the catalog in docs/errors.md." },
);

/** Response schemas for the error statuses a route can answer. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorBody]));
}

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export function ListPage<T extends TSchema>(item: T) {
  return Type.Object({
    data: Type.Array(item),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
    msg: Type.Literal("success"),
  });
}

/** Ids are short and plain; anything else (a NUL byte, a path fragment) is refused before it reaches the database. */
export const IdParams = Type.Object({ id: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }) });

/** The body of an action that takes none: unknown fields are still refused. */
export const EmptyBody = Type.Object({}, { additionalProperties: false });
