import { randomUUID } from "node:crypto";

/**
 * Fixed VHD (Virtual Hard Disk Image Format Specification, Microsoft, 2006): the disk's bytes as
 * they are, followed by one 512-byte footer. It is what Azure creates managed disks from, with
 * one more rule of Azure's: the virtual size is a whole number of MiB.
 */
export const VHD_FOOTER_BYTES = 512;
export const MiB = 1024 * 1024;

const COOKIE = "conectix";
const FEATURES_RESERVED = 0x0000_0002;
const FORMAT_VERSION = 0x0001_0000;
const FIXED_DATA_OFFSET = 0xffff_ffff_ffff_ffffn;
const DISK_TYPE_FIXED = 2;
/** VHD timestamps count seconds from 2000-01-01 00:00:00 UTC. */
const VHD_EPOCH_MS = Date.UTC(2000, 0, 1);
/**
 * Readers take the size from CHS geometry for some creators and from "current size" for others;
 * "win " (as Hyper-V and Azure write it) tells qemu and Windows to trust the current size, which
 * a CHS geometry cannot express exactly for most sizes.
 */
const CREATOR_APP = "win ";
const CREATOR_VERSION = 0x000a_0000;
const CREATOR_HOST_OS = "Wi2k";

/** The virtual size Azure accepts for a disk of `rawBytes`: rounded up to a whole MiB. */
export function vhdVirtualSize(rawBytes: number): number {
  if (!Number.isSafeInteger(rawBytes) || rawBytes <= 0) throw new RangeError(`disk size ${rawBytes} is not a positive whole number of bytes`);
  return Math.ceil(rawBytes / MiB) * MiB;
}

export interface DiskGeometry {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

/** CHS geometry by the specification's algorithm (appendix "CHS Calculation"). */
export function vhdGeometry(sizeBytes: number): DiskGeometry {
  let totalSectors = Math.floor(sizeBytes / 512);
  if (totalSectors > 65535 * 16 * 255) totalSectors = 65535 * 16 * 255;
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.max(4, Math.floor((cylinderTimesHeads + 1023) / 1024));
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack };
}

/** One's complement of the byte sum, the checksum field itself counted as zero. */
export function vhdChecksum(footer: Buffer): number {
  let sum = 0;
  for (let i = 0; i < VHD_FOOTER_BYTES; i++) if (i < 64 || i >= 68) sum = (sum + footer[i]!) >>> 0;
  return ~sum >>> 0;
}

export interface FooterOptions {
  /** Virtual size; must be a whole number of MiB. */
  sizeBytes: number;
  /** 16 bytes; random when absent. */
  uniqueId?: Buffer;
  time?: Date;
}

/** The footer of a fixed VHD whose data part is `sizeBytes` long. */
export function fixedVhdFooter(o: FooterOptions): Buffer {
  if (!Number.isSafeInteger(o.sizeBytes) || o.sizeBytes <= 0 || o.sizeBytes % MiB !== 0) {
    throw new RangeError(`a fixed VHD for Azure needs a virtual size that is a whole number of MiB, got ${o.sizeBytes}`);
  }
  const uniqueId = o.uniqueId ?? Buffer.from(randomUUID().replace(/-/g, ""), "hex");
  if (uniqueId.length !== 16) throw new RangeError(`a VHD unique id is 16 bytes, got ${uniqueId.length}`);
  const f = Buffer.alloc(VHD_FOOTER_BYTES);
  f.write(COOKIE, 0, "latin1");
  f.writeUInt32BE(FEATURES_RESERVED, 8);
  f.writeUInt32BE(FORMAT_VERSION, 12);
  f.writeBigUInt64BE(FIXED_DATA_OFFSET, 16);
  f.writeUInt32BE(Math.max(0, Math.floor(((o.time ?? new Date()).getTime() - VHD_EPOCH_MS) / 1000)) >>> 0, 24);
  f.write(CREATOR_APP, 28, "latin1");
  f.writeUInt32BE(CREATOR_VERSION, 32);
  f.write(CREATOR_HOST_OS, 36, "latin1");
  f.writeBigUInt64BE(BigInt(o.sizeBytes), 40); // original size
  f.writeBigUInt64BE(BigInt(o.sizeBytes), 48); // current size
  const g = vhdGeometry(o.sizeBytes);
  f.writeUInt16BE(g.cylinders, 56);
  f.writeUInt8(g.heads, 58);
  f.writeUInt8(g.sectorsPerTrack, 59);
  f.writeUInt32BE(DISK_TYPE_FIXED, 60);
  uniqueId.copy(f, 68);
  f.writeUInt32BE(vhdChecksum(f), 64);
  return f;
}

export interface ParsedVhdFooter {
  currentSize: number;
  diskType: "fixed" | "dynamic" | "differencing";
  geometry: DiskGeometry;
  creatorApp: string;
  uniqueId: Buffer;
}

/** Reads a footer; undefined when `buf` is not one (cookie or checksum wrong). */
export function parseVhdFooter(buf: Buffer): ParsedVhdFooter | undefined {
  if (buf.length !== VHD_FOOTER_BYTES || buf.toString("latin1", 0, 8) !== COOKIE) return undefined;
  if (buf.readUInt32BE(64) !== vhdChecksum(buf)) return undefined;
  const type = buf.readUInt32BE(60);
  const diskType = type === 2 ? "fixed" : type === 3 ? "dynamic" : type === 4 ? "differencing" : undefined;
  if (!diskType) return undefined;
  return {
    currentSize: Number(buf.readBigUInt64BE(48)),
    diskType,
    geometry: { cylinders: buf.readUInt16BE(56), heads: buf.readUInt8(58), sectorsPerTrack: buf.readUInt8(59) },
    creatorApp: buf.toString("latin1", 28, 32),
    uniqueId: Buffer.from(buf.subarray(68, 84)),
  };
}
