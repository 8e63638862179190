// Every blob name srlab writes to storage, in one place, so the process server, recovery, the
// configuration server's failover jobs and the CLI agree. docs/storage-format.md describes them.
//
// machines/<id>/log/<first>-<last>.seg            log segments (compressed, encrypted)
// machines/<id>/state.json                         uploaded and processed positions
// machines/<id>/replica/disk-<n>                   replica page blob (the "processed" state)
// machines/<id>/points/<pointId>.json              recovery point documents
// machines/<id>/retention.json                     the last retention prune (what, when)
// machines/<id>/failover/disk-<n>                  disks of the failed-over machine
// machines/<id>/test-failover/disk-<n>             disks of a test failover
// machines/<id>/failback/<psId>/log/…, state.json  failback (Azure → on-premises) stream

/** u64 max has 20 digits, so zero-padded segment names sort by sequence lexicographically. */
const SEQUENCE_DIGITS = 20;
const SEGMENT_NAME = /^machines\/([^/]+)\/log\/(\d{20})-(\d{20})\.seg$/;

/** Machine ids become blob path segments, so they must be one. */
export function isUsableMachineId(machineId: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(machineId);
}

export function machinePrefix(machineId: string): string {
  return `machines/${machineId}/`;
}

/** Replica page blob of one disk (the "processed" state). */
export function replicaBlobName(machineId: string, diskIndex: number): string {
  return `machines/${machineId}/replica/disk-${diskIndex}`;
}

/** Disk of the failed-over ("Azure") machine, or of a test failover. */
export function failoverDiskName(machineId: string, diskIndex: number, test = false): string {
  return `machines/${machineId}/${test ? "test-failover" : "failover"}/disk-${diskIndex}`;
}

export function logPrefix(machineId: string): string {
  return `machines/${machineId}/log/`;
}

/** Replication positions: { uploadedSequence, processedSequence }. */
export function stateObjectName(machineId: string): string {
  return `machines/${machineId}/state.json`;
}

export function pointsPrefix(machineId: string): string {
  return `machines/${machineId}/points/`;
}

export function pointObjectName(machineId: string, pointId: string): string {
  return `${pointsPrefix(machineId)}${pointId}.json`;
}

/** The last retention prune: what it removed and when (so recovery can say why a write is gone). */
export function retentionObjectName(machineId: string): string {
  return `machines/${machineId}/retention.json`;
}

function padSequence(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`sequence must be a non-negative safe integer, got ${n}`);
  return String(n).padStart(SEQUENCE_DIGITS, "0");
}

/** Blob name of a segment: `machines/<id>/log/<first>-<last>.seg`, zero padded to 20 digits. */
export function segmentObjectName(machineId: string, firstSequence: number, lastSequence: number): string {
  if (!machineId || machineId.includes("/")) throw new RangeError(`machine id "${machineId}" is not usable in a blob name`);
  if (lastSequence < firstSequence) throw new RangeError(`segment range ${firstSequence}-${lastSequence} is empty`);
  return `${logPrefix(machineId)}${padSequence(firstSequence)}-${padSequence(lastSequence)}.seg`;
}

/** Inverse of segmentObjectName; undefined for names that are not segments (listings hold others). */
export function parseSegmentObjectName(
  name: string,
): { machineId: string; firstSequence: number; lastSequence: number } | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  const firstSequence = Number(m[2]);
  const lastSequence = Number(m[3]);
  if (!Number.isSafeInteger(firstSequence) || !Number.isSafeInteger(lastSequence) || lastSequence < firstSequence) {
    return undefined;
  }
  return { machineId: m[1]!, firstSequence, lastSequence };
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
