import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The compiled parts a daemon or the CLI needs on another host (tests and benchmarks stay home). */
const RUNTIME_DIRS = ["cli", "common", "config-server", "process-server", "mobility-agent", "master-target", "proto"];

export interface PackedSrlab {
  file: string;
  version: string;
  sizeBytes: number;
  /** True when an earlier pack of the same build was reused. */
  cached: boolean;
}

/** The installed srlab package this CLI runs from: the directory of its package.json. */
export async function srlabRoot(): Promise<string> {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { name?: string };
      if (pkg.name === "srlab") return dir;
    } catch {
      // not here; one level up
    }
  }
  throw new Error("cannot find the srlab package this CLI runs from (no package.json named srlab above it)");
}

/**
 * `npm pack` of the running srlab with every production dependency bundled
 * (`bundleDependencies`), so `npm install --offline` of the tarball on the target needs no
 * registry: the compiled code, the .proto files and the head's own node_modules tree (native
 * modules included, built for the head's platform — the target must run the same OS, CPU
 * architecture and Node major). Packs in a staging directory, never touching the installation;
 * the tarball is kept in cacheDir and reused while the build does not change.
 */
export async function packSrlab(cacheDir: string, say: (line: string) => void): Promise<PackedSrlab> {
  const root = await srlabRoot();
  const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as Record<string, unknown> & {
    version: string;
    dependencies?: Record<string, string>;
  };
  const main = join(root, "dist", "cli", "main.js");
  const built = await stat(main).catch(() => undefined);
  if (!built) throw new Error(`srlab is not built (${main} is missing): run npm run build first`);
  const key = createHash("sha256").update(JSON.stringify(pkg)).update(String(built.mtimeMs)).digest("hex").slice(0, 12);
  await mkdir(cacheDir, { recursive: true });
  const file = join(cacheDir, `srlab-${pkg.version}-${key}.tgz`);
  const existing = await stat(file).catch(() => undefined);
  if (existing) return { file, version: pkg.version, sizeBytes: existing.size, cached: true };

  const staging = await mkdtemp(join(cacheDir, "pack-"));
  try {
    const dependencies = pkg.dependencies ?? {};
    const manifest = {
      name: "srlab",
      version: pkg.version,
      description: pkg.description,
      type: pkg.type,
      license: pkg.license,
      engines: pkg.engines,
      bin: pkg.bin,
      dependencies,
      bundleDependencies: Object.keys(dependencies),
      files: ["dist", "proto/srlab"],
    };
    await writeFile(join(staging, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    for (const d of RUNTIME_DIRS) await cp(join(root, "dist", d), join(staging, "dist", d), { recursive: true });
    await cp(join(root, "proto", "srlab"), join(staging, "proto", "srlab"), { recursive: true });
    // npm bundles what it finds in the staging node_modules: a copy of the head's production
    // tree. (A symlink to the head's node_modules is not enough: unless npm trusts the tree's
    // hidden lockfile, which anything written into node_modules afterwards invalidates, it
    // resolves each dependency's own dependencies outside the package and bundles only the
    // direct ones.)
    say(`packing srlab ${pkg.version} with its dependencies (npm pack)…`);
    await copyProductionTree(root, staging);
    const out = await new Promise<string>((resolve, reject) =>
      execFile("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", staging], { cwd: staging, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? reject(new Error(`npm pack failed: ${stderr.trim().split("\n").pop() ?? err.message}`)) : resolve(stdout),
      ),
    );
    const name = (JSON.parse(out) as Array<{ filename: string }>)[0]?.filename;
    if (!name) throw new Error("npm pack named no tarball");
    await rename(join(staging, name), file);
    const size = (await stat(file)).size;
    return { file, version: pkg.version, sizeBytes: size, cached: false };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Copies every package of the head's production dependency tree (`npm ls --omit=dev --all`) into
 * staging/node_modules at the same place: what the package bundles and the target installs.
 */
async function copyProductionTree(root: string, staging: string): Promise<void> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: root, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`npm ls failed (is node_modules complete? run npm install): ${stderr.trim().split("\n").pop() ?? err.message}`)) : resolve(stdout),
    ),
  );
  const modules = join(root, "node_modules");
  const packages = [...new Set(out.split("\n").map((l) => l.trim()))].filter((p) => p.startsWith(`${modules}${sep}`));
  if (packages.length === 0) throw new Error(`npm ls found no production dependency under ${modules}`);
  for (const dir of packages) {
    // A package's own node_modules holds nested packages, listed (and copied) on their own when they are production ones.
    const nested = join(dir, "node_modules");
    await cp(dir, join(staging, relative(root, dir)), { recursive: true, filter: (src) => src !== nested });
  }
}
