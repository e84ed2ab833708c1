// How both native builds (our OpenBLAS addon, the tfjs-node binding) find and call node-gyp
// without it downloading anything.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";

// node-gyp: npm tells scripts where its bundled copy is; otherwise our devDependency.
export function findNodeGyp(root) {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  try {
    return createRequire(join(root, "package.json")).resolve("node-gyp/bin/node-gyp.js");
  } catch {
    return null;
  }
}

// Use the headers that ship with this Node (Debian: /usr/include/node) so node-gyp
// never tries to download them; honour an explicit nodedir from the user.
export function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? [`--nodedir=${prefix}`] : [];
}
