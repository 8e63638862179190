import { StorageKind } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** Storage backends as config files and `srlab status` name them. */
export const storageKinds = new EnumNames("storage kind", {
  azure: StorageKind.STORAGE_KIND_AZURE,
  directory: StorageKind.STORAGE_KIND_DIRECTORY,
});
