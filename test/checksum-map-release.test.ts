import { randomBytes } from "node:crypto";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, expect, test } from "vitest";
import { blockDigest, pageDigests } from "../common/blockhash/index.js";
import { bearerMetadata } from "../common/grpc/index.js";
import { replicaBlobName } from "../common/storage-layout/index.js";
import { ChecksumAlgorithm, ReleaseMode } from "../proto/index.js";
import { DISK_SIZE, useProcessServer, Workload } from "./support/process-server-harness.js";

// The replica checksum map of a machine lives only as long as the process server applies to its
// replica: released, it is deleted; met again, no map from before is trusted.
describe("replica checksum map files and the machine's release", () => {
  const h = useProcessServer();
  const BLOCK = 64 * 1024;
  const request = (machineId: string) => ({ machineId, diskIndex: 0, blockSize: BLOCK, algorithm: ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128, pageSize: 4096 });
  const mapFile = (machineId: string) => join(h.root, "ps", "checksum-maps", machineId, "disk-0.xxh3map");
  const exists = (path: string) => access(path).then(() => true, () => false);

  const checksums = (machineId: string) =>
    new Promise<Map<number, string>>((resolve, reject) => {
      const got = new Map<number, string>();
      const call = h.client.getBlockChecksums(request(machineId), bearerMetadata(h.cs.agentCredential(machineId)));
      call.on("data", (m: { checksums: { blockIndex: number; digest: Buffer; pageDigests: Buffer }[] }) => {
        for (const c of m.checksums) if (c.digest.length > 0) got.set(c.blockIndex, `${c.digest.toString("hex")}/${c.pageDigests.toString("hex")}`);
      });
      call.on("end", () => resolve(got));
      call.on("error", reject);
    });
  const expected = (image: Buffer) => {
    const algorithm = ChecksumAlgorithm.CHECKSUM_ALGORITHM_XXH3_128;
    const out = new Map<number, string>();
    for (let b = 0; b < DISK_SIZE / BLOCK; b++) {
      const block = image.subarray(b * BLOCK, (b + 1) * BLOCK);
      const digest = blockDigest(algorithm, block);
      if (digest.length > 0) out.set(b, `${digest.toString("hex")}/${pageDigests(algorithm, block, 4096).toString("hex")}`);
    }
    return out;
  };
  const replicate = async (machineId: string, w: Workload, count: number) => {
    const agent = h.agent(h.cs.agentCredential(machineId));
    await agent.open(machineId);
    await agent.send(w.writes(count));
    agent.end();
    await h.drain(machineId);
  };
  let commands = 0;
  const release = async (machineId: string, mode: ReleaseMode) => {
    const r = await h.cs.command("process-server/ps-1", { commandId: `release-${++commands}`, jobId: "", command: { $case: "releaseMachine", value: { machineId, mode } } });
    expect(r.error).toBe("");
    // The process server answers a release with a release result (with the handover in handover mode).
    const kind = r.result?.kind;
    if (kind?.$case !== "releaseMachine") throw new Error(`release answered with ${kind?.$case ?? "no"} result`);
    return kind.value;
  };

  test("a machine released without handover (protection disabled) leaves no checksum map behind", async () => {
    const w = new Workload(31);
    await replicate("m31", w, 30);
    // A clean stop writes the map; the restarted server holds the machine again.
    await h.restart();
    expect(await exists(mapFile("m31"))).toBe(true);
    await release("m31", ReleaseMode.RELEASE_MODE_DISCARD);
    expect(await exists(mapFile("m31"))).toBe(false);
    expect(await exists(dirname(mapFile("m31")))).toBe(false);
  });

  test("a machine handed over and adopted again trusts no map from before: its checksums are the replica's", { timeout: 120_000 }, async () => {
    const w = new Workload(32);
    await replicate("m32", w, 30);
    await h.restart();
    const stale = await readFile(mapFile("m32"));
    const { handover } = await release("m32", ReleaseMode.RELEASE_MODE_HANDOVER);
    expect(handover?.uploadedSequence).toBe(w.sequence);
    expect(await exists(mapFile("m32"))).toBe(false);

    // Meanwhile the replica changed under another server's hands (without new sequence numbers,
    // e.g. a resync), and a map of the earlier stay is back where the old one was.
    const blob = replicaBlobName("m32", 0);
    const changed = randomBytes(BLOCK);
    await h.store.writePages(blob, 0, changed);
    changed.copy(w.images[0]!, 0);
    await mkdir(dirname(mapFile("m32")), { recursive: true });
    await writeFile(mapFile("m32"), stale);

    const adopted = await h.cs.command("process-server/ps-1", { commandId: `adopt-${++commands}`, jobId: "", command: { $case: "adoptMachine", value: { handover: handover! } } });
    expect(adopted.error).toBe("");
    expect(await checksums("m32")).toEqual(expected(w.images[0]!));
  });
});
