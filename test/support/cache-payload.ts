import { createHash } from "node:crypto";

/** A record payload derived from machine and sequence, so a reader can check what it got back. */
export function payload(machineId: string, seq: number): Buffer {
  const len = 100 + (seq % 7) * 900;
  const seed = createHash("sha256").update(`${machineId}/${seq}`).digest();
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i += seed.length) seed.copy(out, i);
  return out;
}
