// drizzle-kit: `npm run db:generate` writes SQL migrations for src/store/db/schema.ts into migrations/.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/db/schema.ts",
  out: "./migrations",
});
