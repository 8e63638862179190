/** The rehearsal's own steps live in this group; plan steps keep their plan group. */
export const REHEARSAL_GROUP = "rehearsal";

/**
 * Step names; report.json and the CLI know them (the lab's `srlab rehearse` starts the Azure
 * machines when a "running in Azure" step waits, as `srlab commit` does).
 */
export const STEP = {
  workload: "workload: generated writes on every machine",
  workloadUntilFailover: "workload: generated writes until the planned failover",
  tag: "tag: group-consistent app point",
  testFailover: "test failover",
  verify: (m: string) => `verify: test failover of ${m}`,
  cleanup: "cleanup",
  healthy: (m: string) => `replication healthy: ${m}`,
  failover: "planned failover",
  verifyFailover: (m: string) => `verify: failover of ${m}`,
  commitFailover: "commit failover",
  runningInAzure: (m: string) => `running in Azure: ${m}`,
  writesInAzure: (m: string) => `writes in Azure: ${m}`,
  reprotectBack: "reprotect to on-premises",
  failback: "failback",
  verifyFailback: (m: string) => `verify: failback of ${m}`,
  commitFailback: "commit failback",
  reprotectAzure: "reprotect to Azure",
  tagAgain: "tag: app point after reprotect",
  verifyReplica: (m: string) => `verify: replica of ${m}`,
};
