export { createSparseImageSync, readFullySync } from "./raw-image-io.js";
