// What every feature's routes get from the app: configuration and the database.
import type { Config } from "../config.js";
import type { DatabaseHandle } from "../store/db/client.js";

export interface AppContext {
  config: Config;
  database: DatabaseHandle;
}
