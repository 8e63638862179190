import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { silentLogger } from "../common/logger.js";
import { decodeSegment, deriveSegmentKey, encodeSegment, segmentWorkers } from "../common/segment/index.js";
import { Lifecycle } from "../common/shutdown/index.js";
import { configServerParts } from "../config-server/daemon.js";
import { WriteKind } from "../proto/index.js";

const key = deriveSegmentKey("lifecycle-secret", "k1");
const keys = (id: string) => (id === "k1" ? key : undefined);
const roundTrip = async () => {
  const data = Buffer.alloc(8192, 3);
  const seg = await encodeSegment(
    [{ sequence: 1, kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 0, length: data.length, data, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 }],
    { machineId: "vm-1", key, keyId: "k1" },
  );
  return (await decodeSegment(seg, keys)).records.length;
};

describe("segment worker pools end with their process's work", () => {
  test("the configuration server daemon closes the segment workers after the server stopped, not before", async () => {
    const events: string[] = [];
    // Stands for the configuration server: it replays segments while running and while stopping.
    const server = {
      start: async () => {
        events.push(`start decoded ${await roundTrip()}`);
      },
      stop: async () => {
        events.push(`stop decoded ${await roundTrip()}`);
      },
    };
    const lifecycle = new Lifecycle(silentLogger());
    for (const [name, part] of Object.entries(configServerParts(server))) lifecycle.add(name, part);
    await lifecycle.start();
    const pool = segmentWorkers();
    expect(pool.started).toBeGreaterThanOrEqual(1);
    await lifecycle.stop();
    expect(events).toEqual(["start decoded 1", "stop decoded 1"]);
    // The pool the server used is closed: its threads are gone and it takes no more work.
    expect(pool.started).toBe(0);
    await expect(pool.run({})).rejects.toThrow(/is closed/);
  });

  test("a command that decoded segments exits by itself once done", async () => {
    const child = fileURLToPath(new URL("./support/segment-cli-child.ts", import.meta.url));
    const started = Date.now();
    const r = await new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
      const p = execFile(process.execPath, ["--import", "tsx", child], { timeout: 60_000 }, (_err, stdout, stderr) =>
        resolve({ code: p.exitCode, signal: p.signalCode, stdout, stderr }),
      );
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("decoded 1 record of 65536 bytes\n");
    // Not ended by the timeout's kill: the idle workers did not hold the process.
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});
