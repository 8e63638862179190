export { FileExport, type FileExportOptions } from "./file-export.js";
export { type NbdExport, NbdExportError } from "./nbd-export.js";
export { NbdServer, type NbdServerOptions, type NbdServerStats } from "./nbd-server.js";
export { type Access, OverlapTracker, Ticket } from "./overlap-tracker.js";
