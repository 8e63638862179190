import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/**
 * srlab's version, from the nearest package.json named "srlab" above this file — the same answer
 * from the sources (tests, tsx) and from `dist/`. Empty when none is found (a copied file).
 */
export function srlabVersion(): string {
  if (cached !== undefined) return cached;
  cached = "";
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "srlab") {
        cached = pkg.version ?? "";
        break;
      }
    } catch {
      // no package.json here; look one level up
    }
  }
  return cached;
}
