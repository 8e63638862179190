import { type AdminServiceService, type ConfigurationServiceService, JobState } from "../../proto/index.js";
import { CLIENT_JOB_TYPES, jobTypes } from "../../common/enum-names/index.js";
import { ErrorCode, SrlabError } from "../../common/errors/index.js";
import { isTerminalJobState } from "../store/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";
import { mustGetMachine } from "./machine-lookup.js";
import { checkJobResult } from "../store/index.js";

type JobHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "updateJob"> &
  Pick<Handlers<typeof AdminServiceService>, "listJobs" | "getJob" | "cancelJob" | "createClientJob" | "updateClientJob" | "attachJobReport">;

/** A job the CLI runs itself; its steps start as the CLI reports them. */
const END_STATES = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

/** Jobs: progress reported by the components that run their steps, jobs the CLI runs, and the admin's view. */
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
    cancelJob: async (req) => ({ job: await host.jobs.cancelWorkload(req.jobId, req.reason) }),
    createClientJob: (req) => {
      if (!CLIENT_JOB_TYPES.includes(req.type)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `job type ${jobTypes.nameOf(req.type) ?? req.type}: the CLI records only LoadTest and PushInstall jobs`);
      }
      const job = store.createJob({ type: req.type, machineId: req.machine ? mustGetMachine(store, req.machine).machineId : "", steps: req.steps });
      // The caller is already at work: the job is InProgress from now, even before its first step.
      const first = job.steps[0]?.name;
      const started = first ? store.updateJobStep(job.jobId, first, { state: JobState.JOB_STATE_IN_PROGRESS }) : job;
      host.clientJobs?.renew(job.jobId);
      return { job: started, leaseSeconds: host.clientJobs?.leaseSeconds ?? 0 };
    },
    updateClientJob: (req) => {
      const current = store.getJob(req.jobId);
      if (!current) throw new SrlabError(ErrorCode.NOT_FOUND, `no job ${req.jobId}`);
      // Only a client job has a lease (a component's job is not the CLI's to keep alive).
      if (CLIENT_JOB_TYPES.includes(current.type) && !isTerminalJobState(current.state)) host.clientJobs?.renew(req.jobId);
      if (req.finish && !END_STATES.has(req.finish)) {
        throw new SrlabError(ErrorCode.INVALID_ARGUMENT, `finish must be SUCCEEDED, FAILED or CANCELLED, got ${JobState[req.finish] ?? req.finish}`);
      }
      let job = store.getJob(req.jobId)!;
      // A result comes with the job's end and must be its kind's: refused before anything changes.
      if (req.result?.kind && !req.finish) throw new SrlabError(ErrorCode.INVALID_ARGUMENT, "a result is given with finish (the job's end), not on its own");
      checkJobResult(job.type, req.result);
      if (req.stepName) {
        job = store.updateJobStep(req.jobId, req.stepName, {
          state: req.stepState || JobState.JOB_STATE_IN_PROGRESS,
          progressPercent: req.progressPercent,
          message: req.message,
        });
      }
      if (req.finish) {
        job = store.finishJob(req.jobId, {
          state: req.finish as JobState.JOB_STATE_SUCCEEDED | JobState.JOB_STATE_FAILED | JobState.JOB_STATE_CANCELLED,
          error: req.error,
          result: req.result,
        });
        host.clientJobs?.release(req.jobId);
      }
      return { job };
    },
    attachJobReport: (req) => {
      store.attachJobReport(req.jobId, req.name, Buffer.from(req.content));
      return {};
    },
    getJob: (req) => {
      const job = store.getJob(req.jobId);
      if (!job) throw new SrlabError(ErrorCode.NOT_FOUND, `no job ${req.jobId}`);
      return { job };
    },
  };
}
