import { type AdminServiceService, JobState } from "../../proto/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";

type ClientJobHandlers = Pick<Handlers<typeof AdminServiceService>, "createClientJob" | "updateClientJob">;

/** Jobs the CLI runs itself (push installation), recorded like the configuration server's own. */
export function clientJobHandlers(host: ConfigHost): ClientJobHandlers {
  const { store } = host;
  return {
    createClientJob: (req) => {
      if (!/^[A-Za-z][A-Za-z0-9]*$/.test(req.type)) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `job type "${req.type}" is not a word`);
      const machineId = req.machine ? mustGetMachine(store, req.machine).machineId : "";
      return { job: store.createJob({ type: req.type, machineId, steps: req.steps }) };
    },
    updateClientJob: (req) => {
      let job = store.getJob(req.jobId);
      if (!job) throw new SrlabError(ErrorCode.NOT_FOUND, `no job ${req.jobId}`);
      if (req.stepName) {
        job = store.updateJobStep(req.jobId, req.stepName, { state: req.stepState, progressPercent: req.progressPercent, message: req.message });
      }
      if (req.finish === JobState.JOB_STATE_SUCCEEDED || req.finish === JobState.JOB_STATE_FAILED) {
        job = store.finishJob(req.jobId, { state: req.finish, error: req.error || undefined, resultJson: req.resultJson || undefined });
      } else if (req.finish !== JobState.JOB_STATE_UNSPECIFIED) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "finish must be JOB_STATE_SUCCEEDED or JOB_STATE_FAILED");
      }
      return { job };
    },
  };
}
