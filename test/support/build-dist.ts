import { execFileSync } from "node:child_process";
import { REPO_ROOT } from "./dist.js";

/** Global setup of the e2e project: the labs run the compiled CLI and daemons, so compile them first. */
export default function buildDist(): void {
  execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { cwd: REPO_ROOT, stdio: "inherit" });
}
