// Human units for sizes, rates and durations (flags and config files).
export { parseDuration, parseRate, parseSize } from "./parse-units.js";
