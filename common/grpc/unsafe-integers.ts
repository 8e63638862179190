import type { PackageDefinition } from "@grpc/proto-loader";

/** A proto field as proto-loader describes it (DescriptorProto JSON). */
interface FieldDescriptor {
  name: string;
  number: number;
  type: string;
  typeName?: string;
  label?: string;
}
export interface MessageDescriptor {
  field: FieldDescriptor[];
}

const SIXTY_FOUR_BIT = new Set(["TYPE_UINT64", "TYPE_INT64", "TYPE_FIXED64", "TYPE_SFIXED64", "TYPE_SINT64"]);

/**
 * The path ("batch.records[0].sequence") of the first 64-bit integer field in an encoded message
 * whose value is beyond Number.MAX_SAFE_INTEGER, the largest this server handles; undefined when
 * there is none (or the bytes are not a well-formed message). Used to name the field when a
 * request fails to decode, so the caller gets INVALID_ARGUMENT with the field instead of
 * INTERNAL "Error deserializing request".
 */
export function findUnsafeInteger(bytes: Uint8Array, type: MessageDescriptor, pkg: PackageDefinition): string | undefined {
  try {
    return walk(bytes, type, pkg, "");
  } catch {
    return undefined;
  }
}

/** Request message descriptors by method path ("/srlab.v1.ProcessService/Replicate"). */
export function requestTypesByPath(pkg: PackageDefinition): Map<string, MessageDescriptor> {
  const out = new Map<string, MessageDescriptor>();
  for (const def of Object.values(pkg)) {
    for (const method of Object.values(def as Record<string, unknown>)) {
      const m = method as { path?: unknown; requestType?: { type?: MessageDescriptor } };
      if (typeof m?.path === "string" && m.requestType?.type) out.set(m.path, m.requestType.type);
    }
  }
  return out;
}

/** proto-loader names field types relative to their package ("WriteBatch"), or fully when outside it. */
function descriptor(pkg: PackageDefinition, typeName: string): MessageDescriptor | undefined {
  const key = typeName in pkg ? typeName : Object.keys(pkg).find((k) => k.endsWith(`.${typeName}`));
  const def = key ? (pkg[key] as { type?: MessageDescriptor }) : undefined;
  return def?.type;
}

function walk(bytes: Uint8Array, type: MessageDescriptor, pkg: PackageDefinition, prefix: string): string | undefined {
  const counts = new Map<number, number>();
  const r = new Reader(bytes);
  while (!r.done()) {
    const tag = r.varint();
    const number = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    const field = type.field.find((f) => f.number === number);
    const index = counts.get(number) ?? 0;
    counts.set(number, index + 1);
    const name = field ? `${prefix}${field.name}${field.label === "LABEL_REPEATED" ? `[${index}]` : ""}` : "";
    const wide = field && SIXTY_FOUR_BIT.has(field.type);
    const unsafe = (v: bigint) => {
      const n = field!.type === "TYPE_SINT64" ? (v >> 1n) ^ -(v & 1n) : field!.type === "TYPE_UINT64" || field!.type === "TYPE_FIXED64" ? v : BigInt.asIntN(64, v);
      return n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER);
    };
    if (wire === 0) {
      const v = r.varint();
      if (wide && unsafe(v)) return name;
    } else if (wire === 1) {
      const v = r.fixed64();
      if (wide && unsafe(v)) return name;
    } else if (wire === 5) {
      r.skip(4);
    } else if (wire === 2) {
      const body = r.bytes(Number(r.varint()));
      if (field?.type === "TYPE_MESSAGE" && field.typeName) {
        const inner = descriptor(pkg, field.typeName.replace(/^\./, ""));
        const found = inner && walk(body, inner, pkg, `${name}.`);
        if (found) return found;
      } else if (wide) {
        // Packed repeated 64-bit integers.
        const packed = new Reader(body);
        for (let i = 0; !packed.done(); i++) {
          const v = field.type === "TYPE_FIXED64" || field.type === "TYPE_SFIXED64" ? packed.fixed64() : packed.varint();
          if (unsafe(v)) return `${prefix}${field.name}[${i}]`;
        }
      }
    } else {
      return undefined;
    }
  }
  return undefined;
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new RangeError("truncated varint");
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new RangeError("varint too long");
  }
  fixed64(): bigint {
    const b = this.bytes(8);
    return Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64LE(0);
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw new RangeError("truncated field");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(n: number): void {
    this.bytes(n);
  }
}
