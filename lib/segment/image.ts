/**
 * Images in and out through sharp: decoding at model scale, and rendering a label map as a coloured overlay.
 */
import { promises as fsp } from 'node:fs';
import sharp, { Metadata, Sharp } from 'sharp';
import { ErrorCode, SanError } from '../errors';
import * as is from '../is';
import { checkTensor, isTensorLike, Tensor } from '../runtime/tensor';

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
  // At least one pixel: a 100000×1 image would otherwise round its short side to 0.
  return [Math.max(1, Math.floor(h + 0.5)), Math.max(1, Math.floor(w + 0.5))];
}

/** An RGB image as interleaved uint8 rows, [height, width, 3]. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly height: number;
  readonly width: number;
}

/**
 * What `segment` takes as an image: a file path, encoded bytes in any format sharp reads, a sharp instance, or a
 * uint8 tensor [height, width, 3] of RGB pixels.
 */
export type ImageInput = string | Buffer | Uint8Array | Sharp | Tensor;

/** An image decoded for the network, with the size it had before resizing (after EXIF orientation). */
export interface DecodedImage {
  /** The pixels the network sees. */
  readonly image: RgbImage;
  /** [height, width] of the input, EXIF orientation applied. */
  readonly originalSize: [number, number];
}

/** Options of {@link readImage}. */
export interface ReadImageOptions {
  /**
   * The size to resize to, given the input's [height, width] (EXIF orientation applied); the input's own by default.
   * Called after the header is read and before decoding: a SanError it throws (a budget refused) passes through.
   */
  readonly resizeTo?: (height: number, width: number) => [number, number];
  /** The most pixels an encoded input may declare; more is refused before decoding. */
  readonly maxInputPixels: number;
  /** Where the input came from, for messages ("input", "images[3]"). */
  readonly name: string;
  /** Stops before decoding once aborted, rejecting with its reason. */
  readonly signal?: AbortSignal;
}

/**
 * Decodes any image input, applies its EXIF orientation, drops alpha, and resizes it as `options.resizeTo` says.
 *
 * JPEG shrink-on-load (decoding at 1/2, 1/4 or 1/8 scale in the DCT) is used only where libvips leaves its linear
 * kernel at least 2× to reduce (`fastShrinkOnLoad: false`): measured on 2560×1920 and 1280×960 JPEGs resized to
 * 853×640, the result is then identical to a full decode resized, and sharp stays as close to PIL's bilinear (the
 * reference) as a full decode (mean |Δ| 0.14 and 0.09, max 2 levels); sharp's default, `fastShrinkOnLoad: true`,
 * shrank the 2560×1920 one by 2 on load and moved pixels by up to 16 levels (mean 0.44). From 4× down (4000×3000)
 * both settings shrink by 2 on load: max 7 levels from a full decode, 11 from PIL (a full decode: 5).
 * @throws TypeError (not an image input) or RangeError (a tensor of the wrong type or shape) with code
 * ERR_SAN_INVALID_ARG; a SanError with code ERR_SAN_IMAGE when sharp cannot decode it, it is too large, or a path
 * names something other than a regular file (a FIFO, a device, a folder: refused before it is opened, as reading
 * one could block a thread of libuv's pool for good).
 */
export async function readImage(input: ImageInput, options: ReadImageOptions): Promise<DecodedImage> {
  const { signal } = options;
  const decoder = toSharp(input, options);
  try {
    if (typeof input === 'string') await checkRegularFile(input);
    const oriented = decoder.rotate();
    const metadata = await oriented.clone().metadata();
    const [height, width] = orientedSize(metadata);
    // Also for a sharp instance, whose own limitInputPixels the caller may have lifted.
    if (height * width > options.maxInputPixels) {
      throw new SanError(ErrorCode.IMAGE, `${options.name} has ${height}×${width} pixels, more than maxInputPixels ` +
        `(${options.maxInputPixels})`);
    }
    signal?.throwIfAborted();
    const target = options.resizeTo ? options.resizeTo(height, width) : [height, width];
    let pipeline = oriented.removeAlpha().toColourspace('srgb');
    if (target[0] !== height || target[1] !== width) {
      pipeline = pipeline.resize(target[1], target[0], { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false });
    }
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    const image = { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width };
    return { image, originalSize: [height, width] };
  } catch (error) {
    if (error instanceof SanError || (signal?.aborted && error === signal.reason)) throw error;
    throw new SanError(ErrorCode.IMAGE, `Could not read ${options.name} as an image: ${(error as Error).message}`);
  }
}

async function checkRegularFile(file: string): Promise<void> {
  const stats = await fsp.stat(file);
  if (!stats.isFile()) {
    const kind = stats.isFIFO() ? 'a FIFO' : stats.isDirectory() ? 'a directory'
      : stats.isCharacterDevice() || stats.isBlockDevice() ? 'a device' : stats.isSocket() ? 'a socket' : 'not a file';
    throw new Error(`${file} is ${kind}, not a regular file`);
  }
}

/** A sharp pipeline over any image input; tensors are checked here, encoded bytes when sharp reads them. */
function toSharp(input: ImageInput, options: Pick<ReadImageOptions, 'maxInputPixels' | 'name'>): Sharp {
  const { maxInputPixels, name } = options;
  if (isTensorLike(input)) {
    checkTensor(input, name);
    const { type, dims, data } = input as Tensor;
    if (type !== 'uint8' || dims.length !== 3 || dims[2] !== 3) {
      throw is.invalidParameterError(name, 'a uint8 tensor [height, width, 3] of RGB pixels',
        `${type} [${dims.join(', ')}]`, 'range', type === 'uint8' ? ErrorCode.SHAPE : ErrorCode.DTYPE);
    }
    return sharp(data as Uint8Array, { raw: { height: dims[0], width: dims[1], channels: 3 } });
  }
  if (typeof input === 'string' || input instanceof Uint8Array) {
    if (input.length === 0) throw is.invalidParameterError(name, 'a file path or encoded image bytes', input, 'range');
    // libvips would read the path only up to the NUL: another file.
    if (typeof input === 'string' && !is.path(input)) {
      throw is.invalidParameterError(name, 'a file path without NUL bytes', input, 'range');
    }
    return sharp(input, { limitInputPixels: maxInputPixels, failOn: 'error' });
  }
  if (input instanceof sharp) return (input as Sharp).clone();
  throw is.invalidParameterError(name, 'a file path, a Buffer, a sharp instance or a uint8 tensor [H, W, 3]', input);
}

function orientedSize(metadata: Metadata): [number, number] {
  const { width, height, orientation } = metadata;
  if (!(width > 0 && height > 0)) throw new Error(`it declares a size of ${width}×${height}`);
  // EXIF orientations 5-8 swap the axes.
  return orientation !== undefined && orientation >= 5 ? [width, height] : [height, width];
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
 * Renders `labels` (class indices, row-major [height, width]) as a PNG with a legend of the classes present,
 * largest first, at the top left: over `image` (each pixel mixed half and half with its class colour) or, without
 * one, as plain class colours.
 */
export async function renderOverlay(labels: Uint16Array, classes: readonly string[], size: { height: number; width: number },
  image?: RgbImage): Promise<Buffer> {
  const { height, width } = size;
  const mixed = Buffer.alloc(height * width * 3);
  const counts = new Array<number>(classes.length).fill(0);
  const colours = classes.map((_, i) => classColour(i));
  for (let p = 0; p < labels.length; p += 1) {
    const colour = colours[labels[p]];
    counts[labels[p]] += 1;
    for (let c = 0; c < 3; c += 1) mixed[p * 3 + c] = image ? (image.data[p * 3 + c] + colour[c]) >> 1 : colour[c];
  }
  const present = classes.map((name, i) => ({ name, i, share: counts[i] / labels.length }))
    .filter((entry) => entry.share > 0)
    .sort((a, b) => b.share - a.share);
  return sharp(mixed, { raw: { width, height, channels: 3 } })
    .composite([{ input: legendSvg(present, colours, size), top: 0, left: 0 }])
    .removeAlpha() // the SVG legend brings an alpha channel the label overlay does not need
    .png()
    .toBuffer();
}

const XML_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function legendSvg(entries: { name: string; i: number; share: number }[], colours: number[][],
  image: { height: number; width: number }): Buffer {
  const rowHeight = 18;
  const shown = entries.slice(0, Math.max(1, Math.floor((image.height - 8) / rowHeight)));
  // XML's markup characters as references; characters XML 1.0 forbids (C0 controls, lone surrogates, U+FFFE/F)
  // would make the SVG unreadable, and become U+FFFD.
  const escape = (text: string): string => text
    .replace(XML_FORBIDDEN, '\ufffd')
    .replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = shown.map(({ name, i, share }, row) => {
    const y = 4 + row * rowHeight;
    const [r, g, b] = colours[i];
    return `<rect x="4" y="${y}" width="14" height="14" fill="rgb(${r},${g},${b})" stroke="white"/>` +
      `<text x="24" y="${y + 12}" font-family="sans-serif" font-size="13" fill="white">` +
      `${escape(name)} ${(share * 100).toFixed(1)}%</text>`;
  });
  // Cut to the image: sharp refuses a composite larger than its base.
  const height = Math.min(image.height, 8 + shown.length * rowHeight);
  const width = Math.min(image.width, 240);
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="${width}" height="${height}" fill="black" fill-opacity="0.55"/>${rows.join('')}</svg>`);
}
