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
