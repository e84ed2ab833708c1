// A seeded fuzz run over the OpenAPI document: for every operation, bad values for every path
// param, query param and body field (wrong types, out of range, NUL, lone surrogates, huge and
// empty strings, arrays and objects where scalars go, encoded paths, malformed and deeply
// nested bodies), each sent with the rest of the request valid. Every answer must be below 500,
// every error must be in OpenAI's envelope, text that cannot be stored (NUL, surrogates) and
// numbers that overflow must be 4xx, and the server must still answer /health after each.
//
// It runs on PGlite (PGlite is Postgres: the same text rules); FUZZ_ALL_DATABASES=1 adds the
// TEST_DATABASE_URL server. A failure names the seed; replay or widen a run with:
//
//   FUZZ_SEED=123 FUZZ_PER_FIELD=12 FUZZ_TIMES=1 node scripts/run-tests.mjs test/http/fuzz.test.ts
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { toFile } from "openai";
import { componentSchema, openApiDocument, operationSchema } from "../../src/http/openapi-document.js";
import { mulberry32 } from "../../worker/engine/data/mulberry32.js";
import { ensureTinyModel } from "../../worker/engine/hf/tiny-model.js";
import { type TestDatabase, testDatabases } from "../support/databases.js";
import { chatJsonl } from "../support/jsonl.js";
import { envelopeOf, rawRequest } from "../support/raw-http.js";
import { startTestApp, type TestApp } from "../support/test-app.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
/** bad values tried per field (plus the ones always tried) */
const PER_FIELD = Number(process.env.FUZZ_PER_FIELD ?? 4);

function pick<T>(random: () => number, items: T[], n: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n);
}

/** A JSON value, or raw JSON text for what JSON.stringify cannot write (1e309). */
type Bad = { json: unknown } | { raw: string };
const RAW_MARK = "@@RAW@@";

/** Must be refused whatever the field: text Postgres cannot hold, numbers that overflow. */
const ALWAYS_BAD: Bad[] = [
  { json: "\u0000" },
  { json: "a\ud800b" },
  { json: "\udfff" },
  { raw: "1e309" },
  { raw: "-1e309" },
];
const BODY_VALUES: Bad[] = [
  { json: null },
  { json: true },
  { json: 0 },
  { json: -1 },
  { json: 1.5 },
  { json: 2 ** 53 + 2 },
  { json: -(2 ** 63) },
  { json: 1e20 },
  { json: "" },
  { json: " " },
  { json: "x".repeat(70_000) },
  { json: "🙂".repeat(3000) },
  { json: "%00" },
  { json: "' OR 1=1 --" },
  { json: "$1" },
  { json: "../../etc/passwd" },
  { json: "\\" },
  { json: "\r\n" },
  { json: [] },
  { json: ["x"] },
  { json: [null] },
  { json: {} },
  { json: { a: 1 } },
  { json: { "\u0000": 1 } },
  { json: [[[[[[[[[[1]]]]]]]]]] },
  { json: "auto" },
  { json: "tiny-chatml" },
];
const QUERY_VALUES = [
  "",
  "%00",
  "%ED%A0%80",
  "%FF",
  "1e309",
  "-1e309",
  "-1",
  "0",
  "1.5",
  "0x10",
  "abc",
  "a".repeat(3000),
  "true",
  "null",
  "%27%20OR%201%3D1",
  "ft%3Ax",
];
const ALWAYS_BAD_QUERY = ["%00"];
const PATH_VALUES = [
  "%00",
  "%ED%A0%80",
  "%FF",
  "a".repeat(101),
  "a".repeat(5000),
  "..",
  "%2e%2e",
  "%2F",
  "x%20y",
  "%27",
  "%25",
  "%E6%97%A5%E6%9C%AC",
  "null",
  "-1",
  "1e309",
  "ft%3Atiny-chatml%3Ax%3Ay",
];

interface Operation {
  operationId: string;
  method: string;
  /** /v1/files/{file_id} */
  path: string;
  pathParams: string[];
  queryParams: { name: string; type: unknown }[];
  body: "json" | "multipart" | null;
  bodyProperties: string[];
}

function operations(): Operation[] {
  const doc = openApiDocument() as { paths: Record<string, Record<string, Record<string, unknown>>> };
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ["get", "post", "delete", "put", "patch"]) {
      const op = item[method] as
        | { operationId: string; requestBody?: { content: Record<string, unknown> } }
        | undefined;
      if (!op) continue;
      const schema = operationSchema(op.operationId) as {
        params?: { properties: Record<string, unknown> };
        querystring?: { properties: Record<string, { type?: unknown }> };
        body?: { properties?: Record<string, unknown> };
      };
      const content = op.requestBody?.content ?? {};
      const multipart = "multipart/form-data" in content;
      const multipartRef = (
        (content["multipart/form-data"] as { schema?: { $ref?: string } })?.schema?.$ref ?? ""
      )
        .split("/")
        .pop();
      out.push({
        operationId: op.operationId,
        method: method.toUpperCase(),
        path: `/v1${path}`,
        pathParams: Object.keys(schema.params?.properties ?? {}),
        queryParams: Object.entries(schema.querystring?.properties ?? {}).map(([name, s]) => ({
          name,
          type: s.type,
        })),
        body: multipart ? "multipart" : "application/json" in content ? "json" : null,
        bodyProperties: multipart
          ? Object.keys((componentSchema(multipartRef ?? "") as { properties?: object }).properties ?? {})
          : Object.keys(schema.body?.properties ?? {}),
      });
    }
  }
  return out;
}

interface Fixtures {
  fileId: string;
  uploadId: string;
  jobId: string;
}

/** A valid request body for each JSON operation: mutations change one field of it. */
function validBody(op: Operation, f: Fixtures): Record<string, unknown> {
  switch (op.operationId) {
    case "createUpload":
      return { filename: "f.jsonl", purpose: "batch", bytes: 10, mime_type: "text/plain" };
    case "completeUpload":
      return { part_ids: ["part_none"], md5: "0".repeat(32) };
    case "createFineTuningJob":
      return {
        model: "tiny-chatml",
        training_file: f.fileId,
        suffix: "fz",
        metadata: { k: "v" },
        method: { type: "supervised", supervised: { hyperparameters: { n_epochs: 1, batch_size: 1 } } },
      };
    case "createChatCompletion":
      return {
        model: "tiny-chatml",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 1,
        temperature: 0,
      };
    case "createCompletion":
      return { model: "tiny-chatml", prompt: "hi", max_tokens: 1, temperature: 0 };
    default:
      return {};
  }
}

function validPathValue(name: string, f: Fixtures): string {
  switch (name) {
    case "file_id":
      return f.fileId;
    case "upload_id":
      return f.uploadId;
    case "fine_tuning_job_id":
      return f.jobId;
    case "model":
      return "tiny-chatml";
    default:
      return "ckpt-none";
  }
}

/** Every leaf path of a JSON value ("method.supervised.hyperparameters.n_epochs"). */
function leafPaths(value: unknown, prefix: string[] = []): string[][] {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value);
    return [prefix, ...entries.flatMap(([k, v]) => leafPaths(v, [...prefix, k]))].filter((p) => p.length > 0);
  }
  return [prefix];
}

function withValue(body: unknown, path: string[], value: unknown): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  let node = copy as Record<string, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path[path.length - 1]] = value;
  return copy;
}

function serialize(body: unknown): string {
  return JSON.stringify(body).replace(/"@@RAW@@([^"]*)"/g, "$1");
}

function asJsonValue(bad: Bad): unknown {
  return "json" in bad ? bad.json : `${RAW_MARK}${bad.raw}`;
}

function multipartBody(fields: [string, string, string?][]): { boundary: string; body: Buffer } {
  const boundary = "----fuzz9b1c";
  const chunks: Buffer[] = [];
  for (const [name, value, filename] of fields) {
    const disposition = `form-data; name="${name}"${filename !== undefined ? `; filename="${filename}"` : ""}`;
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`),
      Buffer.from(value),
      Buffer.from("\r\n"),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { boundary, body: Buffer.concat(chunks) };
}

interface Probe {
  op: Operation;
  what: string;
  path: string;
  body?: string | Buffer;
  contentType?: string;
  /** the answer must be a 4xx (the value can never be valid) */
  mustRefuse: boolean;
}

function concretePath(op: Operation, f: Fixtures, override?: [string, string]): string {
  return op.path.replace(/\{([^}]+)\}/g, (_, name: string) =>
    override && override[0] === name ? override[1] : encodeURIComponent(validPathValue(name, f)),
  );
}

function probesFor(op: Operation, f: Fixtures, random: () => number): Probe[] {
  const probes: Probe[] = [];
  const body = op.body === "json" ? validBody(op, f) : undefined;
  const jsonBody = body === undefined ? undefined : serialize(body);
  const base = (
    p: Omit<Probe, "op" | "contentType" | "body"> & { body?: string | Buffer; contentType?: string },
  ): Probe => ({
    op,
    body: p.body ?? jsonBody,
    contentType: p.contentType ?? (jsonBody !== undefined ? "application/json" : undefined),
    ...p,
  });
  for (const name of op.pathParams) {
    for (const value of [...pick(random, PATH_VALUES, PER_FIELD), "%00"]) {
      probes.push(
        base({
          what: `path ${name}=${value.slice(0, 20)}`,
          path: concretePath(op, f, [name, value]),
          mustRefuse: value === "%00",
        }),
      );
    }
  }
  for (const { name } of op.queryParams) {
    if (op.operationId === "listFineTuningEvents" && name === "stream") continue; // a live stream, by design
    const values = [...pick(random, QUERY_VALUES, PER_FIELD), ...ALWAYS_BAD_QUERY];
    for (const value of values) {
      probes.push(
        base({
          what: `query ${name}=${value.slice(0, 20)}`,
          path: `${concretePath(op, f)}?${name}=${value}`,
          mustRefuse: value === "%00",
        }),
      );
    }
    for (const shape of [`${name}[]=1&${name}[]=2`, `${name}[a]=1`, `${name}=1&${name}=2`]) {
      probes.push(
        base({ what: `query ${shape}`, path: `${concretePath(op, f)}?${shape}`, mustRefuse: false }),
      );
    }
  }
  if (body !== undefined) {
    const paths = [...leafPaths(body), ...op.bodyProperties.filter((p) => !(p in body)).map((p) => [p])];
    for (const path of paths) {
      for (const bad of [...pick(random, BODY_VALUES, PER_FIELD), ...pick(random, ALWAYS_BAD, 2)]) {
        const text = serialize(withValue(body, path, asJsonValue(bad)));
        probes.push(
          base({
            what: `body ${path.join(".")}=${("json" in bad ? JSON.stringify(bad.json) : bad.raw).slice(0, 30)}`,
            path: concretePath(op, f),
            body: text,
            mustRefuse: ALWAYS_BAD.includes(bad),
          }),
        );
      }
    }
    for (const whole of [
      "",
      "{",
      "[]",
      "null",
      "123",
      '"s"',
      "[".repeat(5000) + "]".repeat(5000),
      `{"a":${"[".repeat(20000)}${"]".repeat(20000)}}`,
    ]) {
      probes.push(
        base({
          what: `body ${whole.slice(0, 12)}`,
          path: concretePath(op, f),
          body: whole,
          mustRefuse: whole !== "",
        }),
      );
    }
    probes.push(
      base({
        what: "body as text/plain",
        path: concretePath(op, f),
        contentType: "text/plain",
        mustRefuse: true,
      }),
    );
  }
  if (op.body === "multipart") {
    const file = op.operationId === "createFile" ? "file" : "data";
    const content = chatJsonl(2);
    const good: [string, string, string?][] =
      op.operationId === "createFile"
        ? [
            ["purpose", "fine-tune"],
            ["file", content, "t.jsonl"],
          ]
        : [["data", "abcde", "p"]];
    for (const [index, field] of good.entries()) {
      for (const value of [...pick(random, QUERY_VALUES.map(decodeURIComponentSafe), PER_FIELD), "\u0000"]) {
        const fields = good.map((g, i): [string, string, string?] =>
          i === index ? (g[2] !== undefined ? [g[0], g[1], value] : [g[0], value]) : g,
        );
        const { boundary, body: mp } = multipartBody(fields);
        probes.push(
          base({
            what: `multipart ${field[0]}${field[2] !== undefined ? " filename" : ""}=${JSON.stringify(value.slice(0, 20))}`,
            path: concretePath(op, f),
            body: mp,
            contentType: `multipart/form-data; boundary=${boundary}`,
            mustRefuse: value === "\u0000",
          }),
        );
      }
    }
    for (const [what, fields] of [
      ["no file", good.filter((g) => g[0] !== file)],
      ["two files", [...good, [file, "x", "y"]]],
      ["an unknown field", [...good, ["zzz", "\u0000"]]],
      ["expires_after bad", [["expires_after[seconds]", "1e309"], ...good]],
    ] as [string, [string, string, string?][]][]) {
      const { boundary, body: mp } = multipartBody(fields);
      probes.push(
        base({
          what: `multipart ${what}`,
          path: concretePath(op, f),
          body: mp,
          contentType: `multipart/form-data; boundary=${boundary}`,
          mustRefuse: what !== "expires_after bad" || op.operationId === "createFile",
        }),
      );
    }
    for (const raw of [
      "",
      "--x\r\n",
      "--x\r\nContent-Disposition: form-data\r\n\r\n",
      `--x\r\nContent-Disposition: form-data; name="${file}"; filename="a"\r\n\r\nabc`,
    ]) {
      probes.push(
        base({
          what: `multipart malformed ${JSON.stringify(raw.slice(0, 16))}`,
          path: concretePath(op, f),
          body: raw,
          contentType: "multipart/form-data; boundary=x",
          mustRefuse: true,
        }),
      );
    }
    probes.push(
      base({
        what: "multipart without boundary",
        path: concretePath(op, f),
        body: "x",
        contentType: "multipart/form-data",
        mustRefuse: true,
      }),
    );
  }
  for (const variant of [
    concretePath(op, f).replace(/^\/v1/, "/%761"),
    concretePath(op, f).replace(/\/([a-z])/g, (_m, c: string) => `/%${c.charCodeAt(0).toString(16)}`),
    `${concretePath(op, f)}%00`,
    `${concretePath(op, f)}/%2e%2e`,
  ]) {
    probes.push(base({ what: `encoded path ${variant.slice(0, 40)}`, path: variant, mustRefuse: false }));
  }
  return probes;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const targets = process.env.FUZZ_ALL_DATABASES ? testDatabases() : testDatabases().slice(0, 1);
for (const target of targets) {
  describe(`fuzz over the OpenAPI document [${target.name}] (seed ${SEED})`, () => {
    let db: TestDatabase;
    let app: TestApp;
    let fixtures: Fixtures;
    before(async () => {
      db = await target.open();
      app = await startTestApp({ database: db.handle });
      await ensureTinyModel(app.config.modelsDir);
      const file = await app.client.files.create({
        file: await toFile(Buffer.from(chatJsonl(12)), "t.jsonl"),
        purpose: "fine-tune",
      });
      const upload = await app.client.uploads.create({
        filename: "u.jsonl",
        purpose: "batch",
        bytes: 1000,
        mime_type: "text/plain",
      });
      const job = await app.client.fineTuning.jobs.create({ model: "tiny-chatml", training_file: file.id });
      // a finished job: its event stream ends at once
      await app.client.fineTuning.jobs.cancel(job.id);
      fixtures = { fileId: file.id, uploadId: upload.id, jobId: job.id };
    });
    after(async () => {
      await app.close();
      await db.dispose();
    });

    it("every bad input is a 4xx in the envelope, never a 5xx, and the server stays up", async () => {
      const random = mulberry32(SEED);
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      let sent = 0;
      for (const op of operations()) {
        const t0 = Date.now();
        const n0 = sent;
        for (const probe of probesFor(op, fixtures, random)) {
          const headers: Record<string, string> = { authorization: `Bearer ${app.apiKey}` };
          if (probe.contentType) headers["content-type"] = probe.contentType;
          const label = `${op.method} ${op.operationId} ${probe.what}`;
          let res: Awaited<ReturnType<typeof rawRequest>>;
          try {
            res = await rawRequest(app.origin, op.method, probe.path, { headers, body: probe.body });
          } catch (err) {
            failures.push(`${label}: no answer (${(err as Error).message})`);
            continue;
          }
          sent++;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500) failures.push(`${label}: ${res.status} ${res.text.slice(0, 300)}`);
          else if (res.status >= 400 && !envelopeOf(res.text))
            failures.push(`${label}: not in the envelope: ${res.status} ${res.text.slice(0, 300)}`);
          else if (probe.mustRefuse && res.status < 400)
            failures.push(`${label}: accepted (${res.status}) ${res.text.slice(0, 200)}`);
          const health = await fetch(`${app.origin}/health`).catch(() => null);
          if (health?.status !== 200) {
            failures.push(`${label}: /health stopped answering after it`);
            break;
          }
        }
        if (process.env.FUZZ_TIMES) console.log(op.operationId, sent - n0, Date.now() - t0);
      }
      assert.deepEqual(failures, [], `seed ${SEED}`);
      assert.ok(sent > 500, `only ${sent} requests`);
      const summary = [...statuses]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}×${n}`)
        .join(" ");
      console.log(`fuzz [${target.name}] seed ${SEED}: ${sent} requests: ${summary}`);
    });
  });
}
