// The web console: plain ES modules from console/ and a fixed set of library files from
// node_modules, served by the API process itself (same origin, so the console calls /v1 with
// the key the user signs in with). Public routes: the assets hold no data; every call the
// console makes to /v1 carries the key.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import { ApiError } from "../api-error.js";

// src/console/ and the esbuild bundle in dist/server/ are both two levels below the root.
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
export const CONSOLE_DIR = resolve(ROOT, "console");

/** The libraries the console imports (by the import map in console/index.html), pinned in package.json. */
const VENDOR_FILES: Record<string, string> = {
  "preact.mjs": "node_modules/preact/dist/preact.mjs",
  "preact-hooks.mjs": "node_modules/preact/hooks/dist/hooks.mjs",
  "htm.mjs": "node_modules/htm/dist/htm.module.js",
  "uplot.mjs": "node_modules/uplot/dist/uPlot.esm.js",
  "uplot.css": "node_modules/uplot/dist/uPlot.min.css",
};

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

function consoleNotFound(path: string): ApiError {
  return new ApiError(404, `No console asset at ${path}.`, { code: "not_found" });
}

/** A path inside console/ (no `..`, no dotfiles), or null. */
export function consoleAssetPath(relative: string): string | null {
  if (relative === "" || relative.split("/").some((s) => s === "" || s.startsWith("."))) return null;
  const full = resolve(CONSOLE_DIR, relative);
  return full.startsWith(CONSOLE_DIR + sep) && CONTENT_TYPES[extname(full)] ? full : null;
}

async function sendFile(reply: FastifyReply, path: string, shownPath: string): Promise<FastifyReply> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    throw consoleNotFound(shownPath);
  }
  // no-cache: the browser revalidates, so a new release is picked up on the next load
  return reply
    .header("content-type", CONTENT_TYPES[extname(path)] ?? "application/octet-stream")
    .header("cache-control", "no-cache")
    .header("x-content-type-options", "nosniff")
    .send(body);
}

export const consoleRoutes: FastifyPluginAsync = async (app) => {
  const index = resolve(CONSOLE_DIR, "index.html");
  app.get("/", { config: { public: true } }, async (_request, reply) => {
    const html = await readFile(index, "utf8").catch(() => {
      throw consoleNotFound("/");
    });
    return reply
      .header("content-type", CONTENT_TYPES[".html"])
      .header("cache-control", "no-cache")
      .header("x-content-type-options", "nosniff")
      .header("content-security-policy", consoleCsp(html))
      .send(html);
  });
  app.get<{ Params: { name: string } }>(
    "/console/vendor/:name",
    { config: { public: true } },
    async (request, reply) => {
      const { name } = request.params;
      const file = Object.hasOwn(VENDOR_FILES, name) ? VENDOR_FILES[name] : undefined;
      if (!file) throw consoleNotFound(request.url);
      return sendFile(reply, resolve(ROOT, file), request.url);
    },
  );
  app.get<{ Params: { "*": string } }>("/console/*", { config: { public: true } }, async (request, reply) => {
    const relative = request.params["*"];
    const path = consoleAssetPath(relative);
    if (!path) throw consoleNotFound(request.url);
    return sendFile(reply, path, request.url);
  });
};

/**
 * Same-origin code only. The import map has to be inline (browsers load no external import
 * maps), so it alone is allowed, by its hash.
 */
export function consoleCsp(html: string): string {
  const inline = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash("sha256").update(m[1]).digest("base64")}'`,
  );
  return [
    "default-src 'self'",
    `script-src 'self' ${inline.join(" ")}`.trim(),
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}
