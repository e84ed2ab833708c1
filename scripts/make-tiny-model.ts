// npm run make:tiny-model -- [models dir]   (default: $MODELS_DIR, else ./models)
// Writes the deterministic tiny ChatML model (worker/engine/hf/tiny-model.ts) if it is absent.

import path from "node:path";
import { ensureTinyModel } from "../worker/engine/hf/tiny-model.js";

const dir = path.resolve(process.argv.slice(2).find((a) => a !== "--") ?? process.env.MODELS_DIR ?? "models");
const id = await ensureTinyModel(dir);
console.log(`tiny model ready: ${path.join(dir, id)} (model id "${id}")`);
