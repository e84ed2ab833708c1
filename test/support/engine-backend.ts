// The engine's backend in tests, configured from the environment exactly as the worker does it
// (src/config.ts: TFJS_BACKEND, TUNEHOUSE_NATIVE_MATMUL, TUNEHOUSE_NATIVE_ADDON,
// OPENBLAS_*), so the suite runs on the backend a run asks for (e.g. TFJS_BACKEND=tensorflow).

import { loadBackendOptions } from "../../src/config.js";
import {
  type BackendInfo,
  type BackendOptions,
  configureBackend,
  initBackend,
} from "../../worker/engine/backend/backend.js";

export function testBackendOptions(): BackendOptions {
  return loadBackendOptions(process.env);
}

/** Sets up the configured backend now. */
export function initTestBackend(): Promise<BackendInfo> {
  return initBackend(testBackendOptions());
}

/** Makes code that sets up the backend on first use (chat serving, jobs) use the configured one. */
export function configureTestBackend(): void {
  configureBackend(testBackendOptions());
}
