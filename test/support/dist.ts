import { fileURLToPath, pathToFileURL } from "node:url";

/** The repository's root directory. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * The CLI and the daemons of a lab run as child processes from the compiled `dist/`, which the
 * e2e project's global setup builds; the tests themselves import the TypeScript sources.
 */
export function distPath(relative: string): string {
  return fileURLToPath(new URL(`dist/${relative}`, pathToFileURL(REPO_ROOT)));
}

/**
 * `file:` URL of a TypeScript source module, for a crash-test child started with
 * {@link TS_CHILD_ARGS} (tsx loads the sources, so unit tests need no build).
 */
export function sourceUrl(relative: string): string {
  return new URL(relative, pathToFileURL(REPO_ROOT)).href;
}

/** Node flags for a child process that runs an inline ESM script importing TypeScript sources. */
export const TS_CHILD_ARGS = ["--import", "tsx", "--input-type=module"];
