// Terminal views of the CLI: colour, in-place redraw, live loops.
export { palette, type Palette, truncateVisible, visibleLength, wantsColour } from "./ansi.js";
export { interruptSignal, LiveView, watch, type WatchOptions } from "./live-view.js";
