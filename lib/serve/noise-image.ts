// SPDX-License-Identifier: Apache-2.0
/**
 * Seeded noise images for load tests, benchmarks and tests: the same seed gives the same bytes on every machine, and
 * noise compresses poorly, so a PNG of it is as large as a real photo of that size. Not exported from the package.
 * @module
 */
import sharp from 'sharp';

/** A PNG of `height` × `width` RGB noise from a linear congruential generator seeded with `seed`. */
export function noisePng(height: number, width: number, seed: number): Promise<Buffer> {
  const data = Buffer.alloc(height * width * 3);
  // Math.imul: the products in 32-bit integer arithmetic. In doubles they pass 2^53 and lose the low bits that make
  // the sequence random, and the 'noise' then compressed 8-fold.
  let state = Math.imul(seed + 1, 2654435761) >>> 0;
  for (let i = 0; i < data.length; i += 1) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    data[i] = state >>> 24;
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
