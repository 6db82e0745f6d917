/** Small seeded pseudo-random generators: reproducible sampling and random checkpoints. */

/**
 * xoshiro128** (Blackman & Vigna), 32-bit state words, seeded by four outputs of splitmix32 so that any integer
 * seed (negative or above 2^32 included: it is folded into two 32-bit halves) gives a well-mixed state.
 */
export class Xoshiro128 {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    let x = (Math.floor(seed / 0x100000000) ^ (seed >>> 0) ^ 0x9e3779b9) >>> 0;
    x = (x + Math.imul(Math.floor(seed / 0x100000000) | 0, 0x85ebca6b)) >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** Next 32 random bits. */
  nextU32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextFloat(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Normal(mean, std) draws by the Box-Muller transform over a Xoshiro128 stream. */
export class NormalRandom {
  private spare: number | null = null;
  constructor(private readonly rng: Xoshiro128) {}

  next(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    // u1 in (0, 1] so that log(u1) is finite.
    const u1 = 1 - this.rng.nextFloat();
    const u2 = this.rng.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return mean + std * r * Math.cos(2 * Math.PI * u2);
  }
}
