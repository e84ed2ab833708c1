// The layer rule (docs/architecture.md), checked in CI by `npm run check:deps`:
//   src/http    → src/store, src/serving, worker/engine, src/contract, src/config.ts
//   src/serving → src/store, worker/engine, src/contract
//   worker/     → src/store, worker/engine, src/contract, src/config.ts   (worker/ outside engine)
//   src/store   → src/store, and src/contract for types only
//   worker/engine → nothing outside worker/engine
// Entry points (src/server.ts, src/keys-cli.ts), scripts/, bench/ and test/ may import anything.
// No import cycles anywhere; no Fastify below the HTTP layer.

/** Any file of ours (node_modules and node's own modules are not governed by the layer rule). */
const OURS = "^(src|worker|scripts|bench|test|console)/";

/** `from` may import only its own tree and the listed paths. */
function layer(name, from, allowed, comment) {
  return {
    name,
    severity: "error",
    comment,
    from: { path: from.path, pathNot: from.pathNot },
    to: { path: OURS, pathNot: allowed },
  };
}

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import cycle: split the shared part out, or invert the dependency.",
      from: {},
      // Cycles through `import type` count too: they tangle the layers as much as value imports.
      to: { circular: true },
    },
    layer(
      "http-layer",
      { path: "^src/http/" },
      ["^src/(http|store|serving|contract)/", "^src/config\\.ts$", "^worker/engine/"],
      "src/http may import src/store, src/serving, worker/engine, src/contract and src/config.ts.",
    ),
    layer(
      "serving-layer",
      { path: "^src/serving/" },
      ["^src/(serving|store|contract)/", "^worker/engine/"],
      "src/serving may import src/store, worker/engine and src/contract.",
    ),
    layer(
      "worker-layer",
      { path: "^worker/", pathNot: "^worker/engine/" },
      ["^worker/", "^src/(store|contract)/", "^src/config\\.ts$"],
      "worker/ (outside the engine) may import src/store, worker/engine, src/contract and src/config.ts.",
    ),
    layer(
      "store-layer",
      { path: "^src/store/" },
      ["^src/store/", "^src/contract/"],
      "src/store may import only src/store (and src/contract, for types).",
    ),
    {
      name: "store-contract-types-only",
      severity: "error",
      comment: "src/store may use src/contract's types, never its values (use `import type`).",
      from: { path: "^src/store/" },
      to: { path: "^src/contract/", dependencyTypesNot: ["type-only"] },
    },
    layer(
      "engine-leaf",
      { path: "^worker/engine/" },
      ["^worker/engine/"],
      "worker/engine is the leaf library: it imports nothing outside worker/engine.",
    ),
    layer(
      "contract-leaf",
      { path: "^src/contract/" },
      ["^src/contract/"],
      "src/contract holds the types generated from openapi/openapi.yaml and imports nothing of ours.",
    ),
    {
      name: "no-fastify-below-http",
      severity: "error",
      comment: "Fastify belongs to src/http: the store, serving and the worker stay framework-free.",
      from: { path: "^(src/store|src/serving|worker)/" },
      to: { path: "(^|/)node_modules/(fastify|@fastify/[^/]+)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^test/fixtures/" },
    // `import type` must be seen: the store's contract imports are allowed only as types, and
    // a type-only import of Fastify below the HTTP layer is still a dependency on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".mjs", ".js", ".cjs", ".json", ".d.ts"],
      mainFields: ["module", "main", "types", "typings"],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
