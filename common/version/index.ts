export { srlabVersion } from "./package-version.js";
