// Blob names of one machine's replication data (docs/replication-model.md, write path steps 4–6).

export function machinePrefix(machineId: string): string {
  return `machines/${machineId}/`;
}

export function replicaBlobName(machineId: string, diskIndex: number): string {
  return `machines/${machineId}/replica/disk-${diskIndex}`;
}

export function logPrefix(machineId: string): string {
  return `machines/${machineId}/log/`;
}

export function stateObjectName(machineId: string): string {
  return `machines/${machineId}/state.json`;
}

export function pointsPrefix(machineId: string): string {
  return `machines/${machineId}/points/`;
}

export function pointObjectName(machineId: string, pointId: string): string {
  return `${pointsPrefix(machineId)}${pointId}.json`;
}

/** Machine ids become blob path segments, so they must be one. */
export function isUsableMachineId(machineId: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(machineId);
}
