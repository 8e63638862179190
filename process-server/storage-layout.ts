import { parseSegmentObjectName, segmentObjectName } from "../common/segment/index.js";

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

/**
 * Failback (Azure → on-premises) data of one process server. Apart from the on-premises→Azure
 * names because the reverse stream is numbered afresh: its segments and state must never be
 * mistaken for the replica's log (recovery replays `log/`) or overwrite it.
 */
export function failbackPrefix(machineId: string, processServerId: string): string {
  return `machines/${machineId}/failback/${processServerId}/`;
}

export function failbackStateObjectName(machineId: string, processServerId: string): string {
  return `${failbackPrefix(machineId, processServerId)}state.json`;
}

/** Where the segments of one direction live: `log/` for the replica, the failback prefix otherwise. */
export interface LogLocation {
  prefix: string;
  name(firstSequence: number, lastSequence: number): string;
  parse(name: string): { firstSequence: number; lastSequence: number } | undefined;
}

export function logLocation(machineId: string, failbackOf?: string): LogLocation {
  const standard = logPrefix(machineId);
  if (failbackOf === undefined) {
    return {
      prefix: standard,
      name: (first, last) => segmentObjectName(machineId, first, last),
      parse: (name) => {
        const p = parseSegmentObjectName(name);
        return p?.machineId === machineId ? p : undefined;
      },
    };
  }
  // Same file names as the standard log, under the failback prefix.
  const prefix = `${failbackPrefix(machineId, failbackOf)}log/`;
  return {
    prefix,
    name: (first, last) => prefix + segmentObjectName(machineId, first, last).slice(standard.length),
    parse: (name) => {
      if (!name.startsWith(prefix)) return undefined;
      const p = parseSegmentObjectName(standard + name.slice(prefix.length));
      return p?.machineId === machineId ? p : undefined;
    },
  };
}
