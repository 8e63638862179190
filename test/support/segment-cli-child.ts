// A command that decodes segments the way a CLI verb would, then simply returns: the test checks
// that the process ends by itself (no process.exit) once its work is done.
import { decodeSegment, deriveSegmentKey, encodeSegment } from "../../common/segment/index.js";
import { WriteKind } from "../../proto/index.js";

const key = deriveSegmentKey("cli-child-secret", "k1");
const data = Buffer.alloc(65536, 7);
const segment = await encodeSegment(
  [{ sequence: 1, kind: WriteKind.WRITE_KIND_DATA, diskIndex: 0, offset: 0, length: data.length, data, tagName: "", consistencyGroup: "", capturedAtMs: 0, readAtSequence: 0 }],
  { machineId: "vm-1", key, keyId: "k1" },
);
const { records } = await decodeSegment(segment, (id) => (id === "k1" ? key : undefined));
process.stdout.write(`decoded ${records.length} record of ${records[0]!.data.length} bytes\n`);
