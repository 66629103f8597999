import { ConfusionMatrix } from '../../lib/eval/metrics';

describe('ConfusionMatrix', () => {
  // 8 pixels, 3 classes; two ignored; class 2 is predicted once but never labelled.
  //   pixel      1  2  3  4    5    6  7  8
  const pred = [0, 0, 1, 0, 1, 2, 1, 2];
  const label = [0, 1, 1, 1, 255, 255, 0, 0];

  test('counts (predicted, true) pairs and skips ignored pixels', () => {
    const cm = new ConfusionMatrix(3);
    cm.add(Uint8Array.from(pred), Uint8Array.from(label));
    // rows: predicted 0..2, columns: true 0..2
    expect(Array.from(cm.counts)).toEqual([1, 2, 0, 1, 1, 0, 1, 0, 0]);
  });

  test('computes the metrics as detectron2 does (hand-computed)', () => {
    const cm = new ConfusionMatrix(3);
    cm.add(Uint8Array.from(pred), Uint8Array.from(label));
    const m = cm.metrics();
    // labelled: c0 3, c1 3, c2 0; predicted: c0 3, c1 2, c2 1; true positives: c0 1, c1 1.
    // IoU c0 = 1/(3+3-1) = 0.2, c1 = 1/(3+2-1) = 0.25; class 2 has no IoU but counts in the mean (predicted).
    expect(m.iou).toEqual([expect.closeTo(20, 10), expect.closeTo(25, 10), null]);
    expect(m.mIoU).toBeCloseTo((100 * (0.2 + 0.25)) / 3, 10);
    expect(m.acc).toEqual([expect.closeTo(100 / 3, 10), expect.closeTo(100 / 3, 10), null]);
    expect(m.mACC).toBeCloseTo(100 / 3, 10);
    expect(m.pACC).toBeCloseTo(100 / 3, 10);
    expect(m.fwIoU).toBeCloseTo(100 * (0.2 * 0.5 + 0.25 * 0.5), 10);
  });

  test('leaves out a class absent from both prediction and label', () => {
    const cm = new ConfusionMatrix(5); // classes 3 and 4 never appear
    cm.add(Uint8Array.from(pred), Uint8Array.from(label));
    expect(cm.metrics().mIoU).toBeCloseTo((100 * (0.2 + 0.25)) / 3, 10);
    expect(cm.metrics().iou.slice(3)).toEqual([null, null]);
  });

  test('gives 100 everywhere for a perfect prediction', () => {
    const cm = new ConfusionMatrix(2);
    cm.add(Uint8Array.from([0, 1, 1]), Uint8Array.from([0, 1, 1]));
    expect(cm.metrics()).toMatchObject({ mIoU: 100, fwIoU: 100, mACC: 100, pACC: 100, iou: [100, 100] });
  });

  test('takes 16-bit labels with 65535 as the ignore value', () => {
    const cm = new ConfusionMatrix(847, 65535);
    cm.add(Uint16Array.from([846, 846, 0, 5]), Uint16Array.from([846, 65535, 0, 846]));
    const m = cm.metrics();
    expect(m.iou[846]).toBeCloseTo(50, 10); // tp 1, labelled 2, predicted 1
    expect(m.iou[0]).toBe(100);
    expect(m.pACC).toBeCloseTo((100 * 2) / 3, 10);
  });

  test('accumulates over images and merges matrices', () => {
    const one = new ConfusionMatrix(3);
    one.add(Uint8Array.from(pred.slice(0, 4)), Uint8Array.from(label.slice(0, 4)));
    const two = new ConfusionMatrix(3);
    two.add(Uint8Array.from(pred.slice(4)), Uint8Array.from(label.slice(4)));
    one.merge(two);
    const whole = new ConfusionMatrix(3);
    whole.add(Uint8Array.from(pred), Uint8Array.from(label));
    expect(one.counts).toEqual(whole.counts);
  });

  test('rejects a label value out of range, naming the pixel', () => {
    const cm = new ConfusionMatrix(3);
    expect(() => cm.add(Uint8Array.from([0, 0]), Uint8Array.from([0, 7]))).toThrow(
      /Label value 7 at pixel 1 is neither a class in \[0, 2\] nor the ignore value 255/,
    );
  });

  test('rejects maps of different sizes and matrices of different classes', () => {
    const cm = new ConfusionMatrix(3);
    expect(() => cm.add(new Uint8Array(3), new Uint8Array(4))).toThrow(RangeError);
    expect(() => cm.merge(new ConfusionMatrix(4))).toThrow(/matrix of 3 classes/);
    expect(() => new ConfusionMatrix(0)).toThrow(RangeError);
  });
});
