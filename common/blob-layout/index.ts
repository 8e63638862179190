export { blobLayout } from "./blob-layout.js";
