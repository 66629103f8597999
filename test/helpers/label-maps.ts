// SPDX-License-Identifier: Apache-2.0
// Small generated benchmark data for the evaluation tests: label maps in every form the benchmarks use, and an
// image of three colour bands (sky, sea, sand) with its label map.
import sharp, { Sharp } from 'sharp';

/** Writes a label map: 8-bit greyscale PNG, 16-bit greyscale PNG or TIFF, or RGB PNG with equal channels. */
export async function writeLabels(file: string, values: number[], width: number,
  form: 'png8' | 'png16' | 'tiff16' | 'tiff8' | 'rgb8' = 'png8'): Promise<string> {
  const height = values.length / width;
  if (form === 'rgb8') {
    const rgb = Buffer.from(values.flatMap((v) => [v, v, v]));
    await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toFile(file);
    return file;
  }
  const sixteen = form === 'png16' || form === 'tiff16';
  const raw = sixteen ? Uint16Array.from(values) : Uint8Array.from(values);
  // Without toColourspace sharp writes a one-channel input as sRGB; TIFF's default compression is lossy JPEG.
  const pipeline = sharp(raw, { raw: { width, height, channels: 1 } }).toColourspace(sixteen ? 'grey16' : 'b-w');
  await (form.startsWith('tiff') ? pipeline.tiff({ compression: 'lzw' }) : pipeline.png()).toFile(file);
  return file;
}

/** Three horizontal bands of colour (sky, sea, sand), height × width. */
export function bandsImage(height: number, width: number): Sharp {
  const pixels = Buffer.alloc(height * width * 3);
  const colours = [[110, 170, 230], [20, 60, 140], [220, 200, 150]];
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) pixels.set(colours[Math.min(2, Math.floor((3 * y) / height))], (y * width + x) * 3);
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } });
}

/** Band labels 0, 1, 2 from top to bottom, with `ignored` pixels of value 255 on the first row. */
export function bandLabels(height: number, width: number, ignored = 0): number[] {
  return Array.from({ length: height * width }, (_, p) =>
    (p < ignored ? 255 : Math.min(2, Math.floor((3 * Math.floor(p / width)) / height))));
}
