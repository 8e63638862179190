export { createSparseImageSync } from "./raw-image-io.js";
