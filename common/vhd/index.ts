// Fixed VHD: the format Azure creates managed disks from.
export {
  type DiskGeometry,
  type FooterOptions,
  fixedVhdFooter,
  MiB,
  type ParsedVhdFooter,
  parseVhdFooter,
  VHD_FOOTER_BYTES,
  vhdChecksum,
  vhdGeometry,
  vhdVirtualSize,
} from "./fixed-vhd.js";
export { finishFixedVhdBlob, rawSizeOfBlob } from "./vhd-blob.js";
