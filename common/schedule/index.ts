// Repeating work on the wall-clock grid.
export { cronExpressionEvery, every, type Repeating } from "./every.js";
