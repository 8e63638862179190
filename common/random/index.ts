export { Prng, seededFloats, seededInts } from "./prng.js";
