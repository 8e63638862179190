import { workloadProfiles } from "../../common/enum-names/index.js";
import { type Job, JobState, type WorkloadCommand } from "../../proto/index.js";
import type { ConfigStore } from "../store/index.js";
import type { RehearsalWorkloadSpec } from "./rehearsal-context.js";

/** Each generator job writes for this long; the rehearsal starts the next until it stops the load. */
const WORKLOAD_CHUNK_SECONDS = 5;

/** A rehearsal's running load: `started` once the first jobs are out, `stop` ends it and its step. */
export interface RehearsalLoad {
  started: Promise<void>;
  readonly error: Error | undefined;
  stop(): Promise<void>;
}

/**
 * Generated writes on every machine until stopped, as short generator jobs back to back (the
 * agent's generator runs for a set time). The step ends when the load stops. Seeds start at
 * `seedBase`, so a second load of a run writes new data.
 */
export function startRehearsalLoad(
  deps: { store: ConfigStore; workload(machine: string, spec: WorkloadCommand): Job; awaitJob(job: Job): Promise<Job> },
  job: Job,
  machines: string[],
  w: RehearsalWorkloadSpec,
  step: string,
  seedBase: number,
): RehearsalLoad {
  const { store } = deps;
  const stop = new AbortController();
  let chunks = 0;
  let error: Error | undefined;
  let markStarted: () => void = () => {};
  const started = new Promise<void>((r) => {
    markStarted = r;
  });
  store.updateJobStep(job.jobId, step, { state: JobState.JOB_STATE_IN_PROGRESS, message: `${w.name} at ${w.rateBytesPerSecond} B/s per machine` });
  const loop = (async () => {
    try {
      while (!stop.signal.aborted) {
        const running = machines.map((m) =>
          deps.workload(m, {
            machineId: "",
            profile: workloadProfiles.parse(w.profile),
            rateBytesPerSecond: w.rateBytesPerSecond,
            iops: 0,
            durationSeconds: WORKLOAD_CHUNK_SECONDS,
            seed: seedBase + chunks,
            blockSize: w.blockSize,
            diskIndex: 0,
          }),
        );
        markStarted();
        await Promise.all(running.map((j) => deps.awaitJob(j)));
        chunks++;
      }
    } catch (err) {
      error = err as Error;
    } finally {
      markStarted();
    }
  })();
  return {
    started,
    get error() {
      return error;
    },
    stop: async () => {
      stop.abort();
      await loop;
      const seconds = chunks * WORKLOAD_CHUNK_SECONDS;
      if (error) {
        store.updateJobStep(job.jobId, step, { state: JobState.JOB_STATE_FAILED, message: `the generator failed after ${seconds} s: ${error.message}` });
      } else {
        store.updateJobStep(job.jobId, step, {
          state: JobState.JOB_STATE_SUCCEEDED,
          progressPercent: 100,
          message: `${w.name} (${w.profile}, ${w.blockSize} B blocks) at ${w.rateBytesPerSecond} B/s on ${machines.length} machines for ${seconds} s`,
        });
      }
    },
  };
}
