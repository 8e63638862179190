import { Option } from "commander";
import { fail } from "../output.js";

/** `--dir`, which every verb that talks to a lab takes. */
export const dirOption = () => new Option("--dir <dir>", "lab directory (default: $SRLAB_DIR or ./.srlab)");

/** Runs a verb's action; any error becomes one clear line and exit status 1. */
export const run = async (fn: () => Promise<unknown>): Promise<void> => {
  await fn().catch(fail);
};
