import { z } from "zod";

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off", ""]);

/**
 * A boolean from YAML, flags or the environment. Environment values are strings, and JavaScript's
 * Boolean("false") is true, so strings are read by their words: true/1/yes/on and
 * false/0/no/off (any case); anything else is a configuration error, not a guess.
 */
export const booleanOption = z.preprocess((value, ctx) => {
  if (typeof value !== "string") return value;
  const word = value.trim().toLowerCase();
  if (TRUE.has(word)) return true;
  if (FALSE.has(word)) return false;
  ctx.addIssue({ code: "custom", message: `expected true or false, got "${value}"` });
  return z.NEVER;
}, z.boolean());
