/**
 * Images in and out through sharp: decoding at model scale, and rendering a label map as a coloured overlay.
 */
import sharp from 'sharp';

/** How SAN sizes an image before the network (detectron2's ResizeShortestEdge at test time). */
export interface ResizePolicy {
  /** Target length of the short side. */
  readonly shortSide: number;
  /** Upper bound of the long side after resizing. */
  readonly maxLongSide: number;
}

/** The reference's test-time policy: short side 640, long side at most 2560. */
export const SAN_RESIZE_POLICY: ResizePolicy = Object.freeze({ shortSide: 640, maxLongSide: 2560 });

/** The size an image of `height` × `width` takes under `policy`, rounded as detectron2 rounds it. */
export function modelScaleSize(height: number, width: number, policy: ResizePolicy): [number, number] {
  const scale = policy.shortSide / Math.min(height, width);
  let [h, w] = height < width ? [policy.shortSide, scale * width] : [scale * height, policy.shortSide];
  const longSide = Math.max(h, w);
  if (longSide > policy.maxLongSide) [h, w] = [(h * policy.maxLongSide) / longSide, (w * policy.maxLongSide) / longSide];
  return [Math.floor(h + 0.5), Math.floor(w + 0.5)];
}

/** An RGB image as interleaved uint8 rows, [height, width, 3]. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly height: number;
  readonly width: number;
}

/** Decodes any image sharp reads, applies its EXIF orientation, drops alpha, and resizes it to model scale. */
export async function readAtModelScale(input: string | Buffer, policy: ResizePolicy): Promise<RgbImage> {
  const oriented = sharp(input).rotate();
  const { width, height } = await oriented.clone().metadata().then((m) => orientedSize(m));
  const [targetHeight, targetWidth] = modelScaleSize(height, width, policy);
  const { data, info } = await oriented
    .removeAlpha()
    .toColourspace('srgb')
    .resize(targetWidth, targetHeight, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width };
}

function orientedSize(metadata: { width: number; height: number; orientation?: number }): {
  width: number;
  height: number;
} {
  const { width, height, orientation } = metadata;
  // EXIF orientations 5-8 swap the axes.
  return orientation !== undefined && orientation >= 5 ? { width: height, height: width } : { width, height };
}

/** A colour for each class index, well apart for neighbouring indices (golden-angle hues). */
export function classColour(index: number): [number, number, number] {
  const hue = (index * 137.508) % 360;
  const [s, l] = [0.75, 0.5];
  const k = (n: number): number => (n + hue / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1))));
  return [f(0), f(8), f(4)];
}

/**
 * Renders `labels` (class indices, row-major [image.height, image.width]) over `image` as a PNG: each pixel mixed
 * half and half with its class colour, and a legend of the classes present, largest first.
 */
export async function renderOverlay(image: RgbImage, labels: Uint16Array, classes: readonly string[]): Promise<Buffer> {
  const { height, width } = image;
  const mixed = Buffer.alloc(height * width * 3);
  const counts = new Array<number>(classes.length).fill(0);
  const colours = classes.map((_, i) => classColour(i));
  for (let p = 0; p < labels.length; p += 1) {
    const colour = colours[labels[p]];
    counts[labels[p]] += 1;
    for (let c = 0; c < 3; c += 1) mixed[p * 3 + c] = (image.data[p * 3 + c] + colour[c]) >> 1;
  }
  const present = classes.map((name, i) => ({ name, i, share: counts[i] / labels.length }))
    .filter((entry) => entry.share > 0)
    .sort((a, b) => b.share - a.share);
  return sharp(mixed, { raw: { width, height, channels: 3 } })
    .composite([{ input: legendSvg(present, colours, height), top: 0, left: 0 }])
    .removeAlpha() // the SVG legend brings an alpha channel the label overlay does not need
    .png()
    .toBuffer();
}

function legendSvg(entries: { name: string; i: number; share: number }[], colours: number[][], maxHeight: number): Buffer {
  const rowHeight = 18;
  const shown = entries.slice(0, Math.max(1, Math.floor((maxHeight - 8) / rowHeight)));
  const escape = (text: string): string => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = shown.map(({ name, i, share }, row) => {
    const y = 4 + row * rowHeight;
    const [r, g, b] = colours[i];
    return `<rect x="4" y="${y}" width="14" height="14" fill="rgb(${r},${g},${b})" stroke="white"/>` +
      `<text x="24" y="${y + 12}" font-family="sans-serif" font-size="13" fill="white">` +
      `${escape(name)} ${(share * 100).toFixed(1)}%</text>`;
  });
  const height = 8 + shown.length * rowHeight;
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="240" height="${height}">` +
    `<rect width="240" height="${height}" fill="black" fill-opacity="0.55"/>${rows.join('')}</svg>`);
}
