import type { ReplicationPolicy } from "../../proto/index.js";

export const DEFAULT_POLICY_NAME = "default";
export const FAILBACK_POLICY_NAME = "failback";

/** Resync runs outside office hours (00:00–07:59 and 18:00–23:59), seconds field included. */
export const OFF_HOURS_RESYNC_SCHEDULE = "0 0 0-7,18-23 * * *";

/** The resync window that starts a resync as soon as one is required (instead of a cron window). */
export const IMMEDIATE_RESYNC = "immediate";

/** ASR's time unit: the published figures are in minutes. */
export const ASR_MINUTE_SECONDS = 60;

/**
 * The built-in policies with ASR's published values, in ASR minutes, converted to seconds with
 * `timeUnitSeconds` per minute (60 in production; 1 in the lab so "15 minutes" is 15 s).
 */
export function builtInPolicies(timeUnitSeconds: number): ReplicationPolicy[] {
  const m = (minutes: number) => Math.max(1, Math.round(minutes * timeUnitSeconds));
  return [
    {
      name: DEFAULT_POLICY_NAME,
      rpoThresholdSeconds: m(15),
      recoveryPointRetentionSeconds: m(24 * 60),
      crashConsistentFrequencySeconds: m(5),
      appConsistentFrequencySeconds: m(60),
      resyncSchedule: OFF_HOURS_RESYNC_SCHEDULE,
      failback: false,
    },
    {
      // Fixed by ASR for failback; crash-consistent frequency is not published, use the usual 5.
      name: FAILBACK_POLICY_NAME,
      rpoThresholdSeconds: m(15),
      recoveryPointRetentionSeconds: m(24 * 60),
      crashConsistentFrequencySeconds: m(5),
      appConsistentFrequencySeconds: m(60),
      resyncSchedule: OFF_HOURS_RESYNC_SCHEDULE,
      failback: true,
    },
  ];
}
