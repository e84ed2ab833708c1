// Fastify runs each registered plugin in a child context of its own (encapsulation): its hooks,
// decorators, handlers and parsers reach only the routes registered inside it. The plugins that
// set up the whole app (request ids, errors, auth, input guards, validation, body parsing) must
// act on the root instead; `skip-override` is Fastify's own mark for that (what the
// fastify-plugin package sets).
import type { FastifyPluginAsync, FastifyPluginOptions } from "fastify";

export function rootPlugin<Options extends FastifyPluginOptions = Record<never, never>>(
  plugin: FastifyPluginAsync<Options>,
): FastifyPluginAsync<Options> {
  return Object.assign(plugin, { [Symbol.for("skip-override")]: true });
}
