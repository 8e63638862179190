export { BufferedReader, StreamClosedError } from "./buffered-reader.js";
export {
  NbdClient,
  NbdCommandError,
  NbdHandshake,
  NbdOptionError,
  type NbdExportInfo,
  type NbdListEntry,
  type NbdTarget,
} from "./nbd-client.js";
export * as NBD from "./protocol.js";
