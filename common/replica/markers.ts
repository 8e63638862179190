import { WriteKind } from "../../proto/index.js";

/**
 * Records that mark a place in the stream and carry no bytes: app-consistent tags and the BASE
 * record that ends a disk's initial copy or resync. Appliers skip them; sinks that make recovery
 * points act on them.
 */
export function isMarker(r: { kind: WriteKind }): boolean {
  return r.kind === WriteKind.WRITE_KIND_TAG || r.kind === WriteKind.WRITE_KIND_BASE;
}
