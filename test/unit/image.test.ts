import sharp from 'sharp';
import { SAN_RESIZE_POLICY, classColour, modelScaleSize, readImage, renderOverlay } from '../../lib/segment/image';

const READ = {
  resizeTo: (h: number, w: number): [number, number] => modelScaleSize(h, w, SAN_RESIZE_POLICY),
  maxInputPixels: 1e8,
  name: 'input',
};

describe('model-scale resizing', () => {
  test.each([
    [375, 500, [640, 853]], // the spec's VOC example: 500×375 → 853×640
    [640, 640, [640, 640]],
    [1000, 500, [1280, 640]],
    [100, 10000, [26, 2560]], // the long side is capped at 2560, the short side follows
    [481, 321, [959, 640]],
  ])('%i×%i becomes %j', (h, w, expected) => {
    expect(modelScaleSize(h, w, SAN_RESIZE_POLICY)).toEqual(expected);
  });

  test('reads an image at model scale as RGB, alpha dropped', async () => {
    const png = await sharp({ create: { width: 50, height: 25, channels: 4, background: { r: 200, g: 10, b: 30, alpha: 1 } } })
      .png().toBuffer();
    const { image, originalSize } = await readImage(png, READ);
    expect(originalSize).toEqual([25, 50]);
    expect([image.height, image.width]).toEqual([640, 1280]);
    expect(image.data.length).toBe(640 * 1280 * 3);
    expect(Array.from(image.data.subarray(0, 3))).toEqual([200, 10, 30]);
  });

  test('applies the EXIF orientation before sizing', async () => {
    const jpeg = await sharp({ create: { width: 60, height: 30, channels: 3, background: 'white' } })
      .jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const { image, originalSize } = await readImage(jpeg, READ);
    expect(originalSize).toEqual([60, 30]);
    expect([image.height, image.width]).toEqual([1280, 640]);
  });
});

describe('JPEG shrink-on-load', () => {
  /** A 1920×1920 JPEG with edges, gradients and fine detail: the content where DCT-domain shrinking shows. */
  async function detailedJpeg(): Promise<Buffer> {
    const side = 1920;
    const raw = Buffer.alloc(side * side * 3);
    for (let y = 0; y < side; y += 1) {
      for (let x = 0; x < side; x += 1) {
        const i = (y * side + x) * 3;
        raw[i] = ((x >> 5) + (y >> 5)) & 1 ? 220 : 30;
        raw[i + 1] = (x * 255) / side;
        raw[i + 2] = 128 + 100 * Math.sin(x / 3) * Math.cos(y / 5);
      }
    }
    return sharp(raw, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  }

  test('a 3× reduction to model scale equals a full decode resized bilinearly, pixel for pixel', async () => {
    const jpeg = await detailedJpeg();
    const { image } = await readImage(jpeg, READ);
    expect([image.height, image.width]).toEqual([640, 640]);
    const full = await sharp(jpeg).raw().toBuffer();
    const reference = await sharp(full, { raw: { width: 1920, height: 1920, channels: 3 } })
      .resize(640, 640, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
    expect(Buffer.from(image.data).equals(reference)).toBe(true);
    // What sharp's default (fastShrinkOnLoad: true) would have given: decoded at half size, visibly other pixels.
    const fast = await sharp(jpeg).resize(640, 640, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
    expect(fast.equals(reference)).toBe(false);
  });
});

describe('overlay rendering', () => {
  test('mixes each pixel half and half with its class colour, legend at the top left', async () => {
    const [height, width] = [100, 400];
    const image = { data: new Uint8Array(height * width * 3).fill(100), height, width };
    const labels = new Uint16Array(height * width).fill(1);
    labels.fill(0, 0, width * 50); // top half: class 0
    const png = await renderOverlay(labels, ['sky', 'grass'], image, image);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([width, height, 3]);
    const pixel = (row: number, col: number): number[] =>
      Array.from(data.subarray((row * width + col) * 3, (row * width + col) * 3 + 3));
    expect(pixel(99, 399)).toEqual(classColour(1).map((c) => (100 + c) >> 1));
    expect(pixel(10, 399)).toEqual(classColour(0).map((c) => (100 + c) >> 1));
    expect(pixel(10, 100)).not.toEqual(pixel(10, 399)); // under the legend
  });

  test('gives neighbouring classes distinct colours', () => {
    const colours = Array.from({ length: 20 }, (_, i) => classColour(i).join(','));
    expect(new Set(colours).size).toBe(20);
  });
});

test('an image smaller than the legend still renders, the legend cut to it', async () => {
  const labels = new Uint16Array(8 * 8).fill(0);
  const png = await renderOverlay(labels, ['a very long class name indeed'], { height: 8, width: 8 });
  const meta = await sharp(png).metadata();
  expect([meta.width, meta.height]).toEqual([8, 8]);
});
