import { spawn } from "node:child_process";
import type { Job, Machine } from "../../proto/index.js";
import type { ConfigStore } from "../store/index.js";
import type { PlanOperationName, PlanSpec } from "./plan-spec.js";

/** How much of a script's combined output a step keeps. */
const OUTPUT_TAIL = 16 * 1024;

/** What a script learns about the run (docs: README, Recovery plans). */
export function scriptContext(store: ConfigStore, job: Job, spec: PlanSpec, op: PlanOperationName, group: string, shutdownSource = false) {
  return {
    plan: spec.name,
    runId: job.jobId,
    operation: op,
    // A failover that shuts the source down first is planned (no data loss); a failback always is.
    failoverType: op === "test-failover" ? "test" : op === "failover" ? (shutdownSource ? "planned" : "unplanned") : op === "failback" ? "planned" : op,
    direction: op === "failback" ? "azure-to-on-premises" : "on-premises-to-azure",
    group,
    machines: spec.groups.flatMap((g) =>
      g.machines.map((name) => {
        const m = store.getMachine(name);
        const info = op === "test-failover" ? m?.testFailover : m?.failover;
        return {
          name,
          machineId: m?.machineId ?? "",
          group: g.name,
          recoveryPointId: info?.recoveryPointId ?? "",
          sequence: info?.sequence ?? 0,
          disks: diskContext(m, op),
        };
      }),
    ),
  };
}

/** Where a script finds a machine's disks for this operation: page blobs (and NBD when running) or images. */
function diskContext(m: Machine | undefined, op: PlanOperationName) {
  if (!m) return [];
  const info = op === "test-failover" ? m.testFailover : m.failover;
  if ((op === "failover" || op === "test-failover" || op === "commit") && info) {
    return info.disks.map((d) => ({
      index: d.index,
      blob: d.blobName,
      sizeBytes: d.sizeBytes,
      nbdUri: m.azureDisks.find((a) => a.index === d.index)?.nbdUri ?? "",
      imagePath: "",
    }));
  }
  return m.disks.map((d) => ({ index: d.index, blob: "", sizeBytes: d.sizeBytes, nbdUri: d.nbdUri, imagePath: d.imagePath }));
}

/** Runs a script action in its own process group, keeping the tail of its output. */
export function runCommand(command: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    const take = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The whole process group: a script's children go too.
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: 127, output: `${output}${err.message}\n`, timedOut: false });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output, timedOut });
    });
  });
}
