// The contract as a plugin: requests are validated against openapi/openapi.yaml's schemas (each
// route names its operation: `schema: operationSchema(operationId)`), and the document itself is
// served at GET /openapi.json, without a key.
import { openApiDocument } from "./openapi-document.js";
import { requestValidatorCompiler } from "./request-validator.js";
import { rootPlugin } from "./root-plugin.js";

export const openApi = rootPlugin(async (app) => {
  app.setValidatorCompiler(requestValidatorCompiler());
  app.get("/openapi.json", { config: { public: true } }, async () => openApiDocument());
});
