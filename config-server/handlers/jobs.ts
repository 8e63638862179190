import { type AdminServiceService, type ConfigurationServiceService, JobState } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";

type JobHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "updateJob"> &
  Pick<Handlers<typeof AdminServiceService>, "listJobs" | "getJob">;

/** Jobs: progress reported by the components that run their steps, and the admin's view. */
export function jobHandlers(host: ConfigHost): JobHandlers {
  const { store } = host;
  return {
    updateJob: (req) => {
      if (!store.getJob(req.jobId)) return {};
      if (req.stepName) {
        store.updateJobStep(req.jobId, req.stepName, {
          state: req.stepState || JobState.JOB_STATE_IN_PROGRESS,
          progressPercent: req.progressPercent,
          message: req.message,
        });
      }
      // Components report cumulative bytes; the job keeps the total.
      const job = store.getJob(req.jobId)!;
      if (req.bytesSent > job.bytesSent) store.addJobBytes(req.jobId, req.bytesSent - job.bytesSent);
      return {};
    },
    listJobs: (req) => ({ jobs: store.listJobs(req.machine ? mustGetMachine(store, req.machine).machineId : undefined) }),
    getJob: (req) => {
      const job = store.getJob(req.jobId);
      if (!job) throw new SrlabError(ErrorCode.NOT_FOUND, `no job ${req.jobId}`);
      return { job };
    },
  };
}
