/**
 * What one storage call costs, learnt from the calls the applier makes: seconds ≈ perCall +
 * perByte × bytes, fitted by least squares over recent calls (older ones fade). The block planner
 * weighs "one call per small run" against "one call per block, more bytes" with it, so a backend
 * where calls are cheap (a local directory) and one where they are dear (Azurite, Azure) each get
 * the plan that suits them.
 */
export class ApplyCostModel {
  private readonly fits = { read: new LineFit(), write: new LineFit() };

  constructor(
    /** Used until enough calls of different sizes have been seen. */
    private readonly defaults = { perCallSeconds: 0.002, perByteSeconds: 4e-9 },
  ) {}

  observe(kind: "read" | "write", bytes: number, seconds: number): void {
    if (bytes > 0 && seconds >= 0 && Number.isFinite(seconds)) this.fits[kind].add(bytes, seconds);
  }

  /** Estimated seconds of one call moving `bytes`. */
  cost(kind: "read" | "write", bytes: number): number {
    const line = this.fits[kind].line() ?? this.fits.write.line() ?? { a: this.defaults.perCallSeconds, b: this.defaults.perByteSeconds };
    return line.a + line.b * bytes;
  }

  /** The current estimates, for logs and metrics. */
  describe(kind: "read" | "write"): { perCallSeconds: number; perByteSeconds: number; fitted: boolean } {
    const line = this.fits[kind].line();
    return line
      ? { perCallSeconds: line.a, perByteSeconds: line.b, fitted: true }
      : { ...this.defaults, fitted: false };
  }
}

/** y = a + b·x by exponentially weighted least squares; undefined until the sizes vary enough. */
class LineFit {
  private n = 0;
  private sx = 0;
  private sy = 0;
  private sxx = 0;
  private sxy = 0;
  private static readonly DECAY = 0.995;

  add(x: number, y: number): void {
    const d = LineFit.DECAY;
    this.n = this.n * d + 1;
    this.sx = this.sx * d + x;
    this.sy = this.sy * d + y;
    this.sxx = this.sxx * d + x * x;
    this.sxy = this.sxy * d + x * y;
  }

  line(): { a: number; b: number } | undefined {
    if (this.n < 8) return undefined;
    const mx = this.sx / this.n;
    const varX = this.sxx / this.n - mx * mx;
    // All calls of (nearly) one size say nothing about the per-byte part.
    if (!(varX > (mx * 0.25) ** 2)) return undefined;
    const my = this.sy / this.n;
    const b = Math.max(0, (this.sxy / this.n - mx * my) / varX);
    const a = Math.max(1e-6, my - b * mx);
    return { a, b };
  }
}
