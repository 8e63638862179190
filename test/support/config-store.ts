import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { SrlabError, type ErrorCode } from "../../common/errors/index.js";
import { ConfigStore, type ConfigStoreOptions } from "../../config-server/store/index.js";
import { ComponentRole, type Disk, type RecoveryPoint, RecoveryPointType, SiteLocation } from "../../proto/index.js";

/** A fresh database path per call, under a temp dir the calling test file removes when it ends. */
export function storePaths(): () => string {
  let dir = "";
  let counter = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "srlab-config-store-"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    counter++;
    return join(dir, `cs-${counter}.db`);
  };
}

/** Opens a store, runs fn, always closes. */
export function withStore<T>(path: string, fn: (s: ConfigStore) => T, options?: ConfigStoreOptions): T {
  const s = ConfigStore.open(path, options);
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

export function registerPs(s: ConfigStore, name: string, location = SiteLocation.SITE_LOCATION_ON_PREMISES) {
  return s.registerComponent({
    role: ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
    name,
    address: `${name}:9443`,
    location,
    version: "1.0.0",
    credentialHash: `hash-${name}`,
  });
}

export function registerAgent(s: ConfigStore, name: string) {
  return s.registerComponent({
    role: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
    name,
    address: `${name}:9500`,
    location: SiteLocation.SITE_LOCATION_ON_PREMISES,
    version: "1.0.0",
    credentialHash: `hash-${name}`,
  });
}

export function disk(id: string, index: number, addedAtSequence = 0): Disk {
  return {
    diskId: id,
    index,
    sizeBytes: 1 << 20,
    imagePath: `/tmp/${id}.img`,
    nbdUri: `nbd://127.0.0.1:10809/${id}`,
    nbdUnixUri: `nbd+unix:///${id}?socket=/tmp/nbd.sock`,
    addedAtSequence,
    blobName: "",
  };
}

export function point(machineId: string, id: string, sequence: number, time: Date, type = RecoveryPointType.RECOVERY_POINT_TYPE_CRASH_CONSISTENT): RecoveryPoint {
  return {
    recoveryPointId: id,
    machineId,
    time,
    sequence,
    type,
    tagName: type === RecoveryPointType.RECOVERY_POINT_TYPE_APP_CONSISTENT ? `tag-${id}` : "",
    disksCovered: 1,
    disksTotal: 1,
    processed: false,
    consistencyGroup: "",
    metadataMode: false,
    direction: 0,
  };
}

export function assertSrlabError(fn: () => unknown, code: ErrorCode, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SrlabError, `expected SrlabError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}
