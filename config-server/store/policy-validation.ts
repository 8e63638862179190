import { validate as validateCron } from "node-cron";
import type { ReplicationPolicy } from "../../proto/index.js";
import { IMMEDIATE_RESYNC } from "./built-in-policies.js";
import { invalid } from "./store-error.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const UINT32_MAX = 0xffff_ffff;
/** ASR keeps recovery points for at most 15 days (in ASR minutes, scaled by the time unit). */
const MAX_RETENTION_MINUTES = 15 * 24 * 60;

/** Throws INVALID_ARGUMENT naming the first bad field. App-consistent frequency 0 means off. */
export function validatePolicy(p: ReplicationPolicy, timeUnitSeconds: number): void {
  if (!NAME.test(p.name)) {
    throw invalid(
      `policy name "${p.name}" is invalid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  const positive: [keyof ReplicationPolicy, number][] = [
    ["rpoThresholdSeconds", p.rpoThresholdSeconds],
    ["recoveryPointRetentionSeconds", p.recoveryPointRetentionSeconds],
    ["crashConsistentFrequencySeconds", p.crashConsistentFrequencySeconds],
  ];
  for (const [field, v] of positive) {
    if (!Number.isInteger(v) || v <= 0 || v > UINT32_MAX) {
      throw invalid(`policy "${p.name}": ${field} must be a positive whole number of seconds, got ${v}`);
    }
  }
  const app = p.appConsistentFrequencySeconds;
  if (!Number.isInteger(app) || app < 0 || app > UINT32_MAX) {
    throw invalid(
      `policy "${p.name}": appConsistentFrequencySeconds must be a whole number of seconds (0 = off), got ${app}`,
    );
  }
  if (p.recoveryPointRetentionSeconds < p.crashConsistentFrequencySeconds) {
    throw invalid(
      `policy "${p.name}": retention (${p.recoveryPointRetentionSeconds}s) must be at least the crash-consistent frequency (${p.crashConsistentFrequencySeconds}s), or no point would survive`,
    );
  }
  if (app > 0 && app < p.crashConsistentFrequencySeconds) {
    throw invalid(
      `policy "${p.name}": app-consistent frequency (${app}s) must not be shorter than the crash-consistent frequency (${p.crashConsistentFrequencySeconds}s)`,
    );
  }
  if (app > p.recoveryPointRetentionSeconds) {
    throw invalid(
      `policy "${p.name}": app-consistent frequency (${app}s) must not exceed retention (${p.recoveryPointRetentionSeconds}s)`,
    );
  }
  const maxRetention = Math.round(MAX_RETENTION_MINUTES * timeUnitSeconds);
  if (p.recoveryPointRetentionSeconds > maxRetention) {
    throw invalid(
      `policy "${p.name}": retention ${p.recoveryPointRetentionSeconds}s exceeds the 15-day maximum (${maxRetention}s at this time unit)`,
    );
  }
  if (p.resyncSchedule !== "" && p.resyncSchedule !== IMMEDIATE_RESYNC && !validateCron(p.resyncSchedule)) {
    throw invalid(`policy "${p.name}": resync window "${p.resyncSchedule}" is neither "${IMMEDIATE_RESYNC}" nor a valid cron expression`);
  }
}
