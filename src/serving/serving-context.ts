// What the serving layer needs from the process: where base models live and the database that
// holds tuned models' adapters. The http layer's AppContext has this shape.
import type { DatabaseHandle } from "../store/db/client.js";

export interface ServingContext {
  config: { modelsDir: string };
  database: DatabaseHandle;
}
