/**
 * Where a machine's data lives in storage. One place so the process server, the failover code and
 * the CLI agree on names.
 */
export const blobLayout = {
  machinePrefix: (machineId: string) => `machines/${machineId}/`,
  /** Replica page blob of one disk (the "processed" state). */
  replicaDisk: (machineId: string, diskIndex: number) => `machines/${machineId}/replica/disk-${diskIndex}`,
  /** Replication positions: { uploadedSequence, processedSequence }. */
  state: (machineId: string) => `machines/${machineId}/state.json`,
  pointsPrefix: (machineId: string) => `machines/${machineId}/points/`,
  point: (machineId: string, pointId: string) => `machines/${machineId}/points/${pointId}.json`,
  logPrefix: (machineId: string) => `machines/${machineId}/log/`,
  /** The last retention prune: what it removed and when (so recovery can say why a write is gone). */
  retention: (machineId: string) => `machines/${machineId}/retention.json`,
  /** Disks of the failed-over ("Azure") machine, or of a test failover. */
  failoverDisk: (machineId: string, diskIndex: number, test = false) =>
    `machines/${machineId}/${test ? "test-failover" : "failover"}/disk-${diskIndex}`,
};
