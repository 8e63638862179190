import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
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
    // npm bundles the dependencies from node_modules as it finds them: the head's own tree.
    await symlink(join(root, "node_modules"), join(staging, "node_modules"), "dir");
    say(`packing srlab ${pkg.version} with its dependencies (npm pack)…`);
    const out = await new Promise<string>((resolve, reject) =>
      execFile("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", staging], { cwd: staging, env: withoutNpmLifecycle(process.env), maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? reject(new Error(`npm pack failed: ${stderr.trim().split("\n").pop() ?? err.message}`)) : resolve(stdout),
      ),
    );
    const packed = (JSON.parse(out) as Array<{ filename: string; files?: Array<{ path: string }>; bundled?: string[] }>)[0];
    const name = packed?.filename;
    if (!name) throw new Error("npm pack named no tarball");
    // A tree read from elsewhere shows as paths leaving the package; such a tarball would install
    // and then fail on its first import on the target.
    const outside = packed.files?.find((f) => f.path.split("/").includes(".."));
    if (outside) throw new Error(`npm pack bundled ${outside.path}, outside the package: the dependency tree was read from another directory`);
    await rename(join(staging, name), file);
    const size = (await stat(file)).size;
    return { file, version: pkg.version, sizeBytes: size, cached: false };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * The environment minus npm's lifecycle variables. Run under `npm test` or `npm run`, the CLI
 * inherits npm_config_local_prefix (and the like) naming the repository; the npm pack in the
 * staging directory would then take that directory's tree for its bundled dependencies and
 * bundle only the direct ones, leaving their own dependencies out of the tarball.
 */
export function withoutNpmLifecycle(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^npm_/i.test(k) && k !== "INIT_CWD"));
}
