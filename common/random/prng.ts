/**
 * Small seeded PRNG (xoshiro128**) so a workload seed yields the same stream on every run and
 * platform; Math.random cannot be seeded.
 */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string) {
    // splitmix32 spreads a possibly tiny seed over the four state words.
    let h = typeof seed === "number" ? seed >>> 0 : hashString(seed);
    const next = () => {
      h = (h + 0x9e3779b9) >>> 0;
      let z = h;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Fill a buffer with random bytes. */
  fill(buf: Buffer): void {
    let i = 0;
    for (; i + 4 <= buf.length; i += 4) buf.writeUInt32LE(this.u32(), i);
    if (i < buf.length) {
      let v = this.u32();
      for (; i < buf.length; i++, v >>>= 8) buf[i] = v & 0xff;
    }
  }

  /** An independent stream derived from this seed (e.g. one for offsets, one for data). */
  fork(label: string): Prng {
    return new Prng(`${this.u32()}:${label}`);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** FNV-1a: string seeds become a 32-bit number. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** `int(n)` of a fresh generator as a plain function: what tests and benchmarks pass around. */
export function seededInts(seed: number | string): (n: number) => number {
  const p = new Prng(seed);
  return (n) => p.int(n);
}

/** `float()` of a fresh generator as a plain function, uniform in [0, 1). */
export function seededFloats(seed: number | string): () => number {
  const p = new Prng(seed);
  return () => p.float();
}
