import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { NbdClient, type NbdTarget } from "../../common/nbd/index.js";
import { Prng } from "../../common/random/index.js";

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject);
  });
}

/** nbd://host:port/name → a target for NbdClient. */
export function parseNbdUri(uri: string): { target: NbdTarget; exportName: string } {
  const u = new URL(uri);
  if (u.protocol === "nbd+unix:") {
    return { target: { socketPath: u.searchParams.get("socket")! }, exportName: decodeURIComponent(u.pathname.slice(1)) };
  }
  return { target: { host: u.hostname, port: Number(u.port) }, exportName: decodeURIComponent(u.pathname.slice(1)) };
}

export async function connectNbd(uri: string): Promise<NbdClient> {
  const { target, exportName } = parseNbdUri(uri);
  return NbdClient.connect(target, exportName);
}

/** Deterministic pseudo-random bytes, so failures are reproducible. */
export function patternBytes(length: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  new Prng(seed).fill(buf);
  return buf;
}

export function hasTool(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}
