import type { IdentityServiceService, SegmentKeyInfo } from "../../proto/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

type SegmentKeyHandlers = Pick<Handlers<typeof IdentityServiceService>, "rotateSegmentKey" | "listSegmentKeys">;

/** `srlab keys rotate|list`: segment key ids only; the keys themselves never reach the CLI. */
export function segmentKeyHandlers(host: ConfigHost): SegmentKeyHandlers {
  const info = (keyId: string, createdAt: Date, current: boolean): SegmentKeyInfo => ({
    keyId,
    createdAt,
    current,
    usedBy: host.segmentKeys.usedBy(keyId).map((id) => host.store.getComponent(id)?.name ?? id),
  });
  return {
    rotateSegmentKey: () => {
      const { key, previousKeyId } = host.segmentKeys.rotate();
      host.logger.info("segment key rotated", { keyId: key.keyId, previousKeyId });
      return { key: info(key.keyId, key.createdAt, true), previousKeyId };
    },
    listSegmentKeys: () => {
      const current = host.segmentKeys.currentKeyId;
      return { keys: host.segmentKeys.records().map((r) => info(r.keyId, r.createdAt, r.keyId === current)) };
    },
  };
}
