/**
 * Semantic-segmentation metrics over label maps, defined as detectron2 v0.6's `SemSegEvaluator` defines them, so
 * that figures compare with the SAN paper and its logs. No model is needed: feed predicted and true label maps.
 */

/** Label maps as row-major class indices; any unsigned or signed integer array. */
export type LabelArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Int16Array | Int8Array;

/** The figures of {@link ConfusionMatrix.metrics}, in percent as detectron2 prints them. */
export interface SegmentationMetrics {
  /** Mean IoU over classes present in the labels or the predictions; a class only predicted counts as IoU 0. */
  mIoU: number;
  /** IoU of each class weighted by its share of labelled pixels. */
  fwIoU: number;
  /** Mean per-class accuracy (recall) over classes present in the labels. */
  mACC: number;
  /** Share of labelled pixels predicted right. */
  pACC: number;
  /** IoU of each class; null for a class absent from the labels. */
  iou: (number | null)[];
  /** Accuracy of each class; null for a class absent from the labels. */
  acc: (number | null)[];
}

/** Accumulates counts of (predicted class, true class) over many images; ignored pixels are left out. */
export class ConfusionMatrix {
  readonly numClasses: number;
  readonly ignoreLabel: number;
  /** Row-major [predicted][true] pixel counts, numClasses × numClasses. */
  readonly counts: Float64Array;

  constructor(numClasses: number, ignoreLabel = 255) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RangeError(`Expected a positive integer for numClasses but received ${numClasses}`);
    }
    this.numClasses = numClasses;
    this.ignoreLabel = ignoreLabel;
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /** Adds one image: `prediction` and `label` are label maps of the same size. */
  add(prediction: LabelArray, label: LabelArray): void {
    if (prediction.length !== label.length) {
      throw new RangeError(`Expected a prediction of ${label.length} pixels, as its label map, but received ${prediction.length}`);
    }
    const n = this.numClasses;
    for (let p = 0; p < label.length; p += 1) {
      const truth = label[p];
      if (truth === this.ignoreLabel) continue;
      const predicted = prediction[p];
      if (truth < 0 || truth >= n) {
        throw new RangeError(`Label value ${truth} at pixel ${p} is neither a class in [0, ${n - 1}] nor the ignore value ${this.ignoreLabel}`);
      }
      if (predicted < 0 || predicted >= n) {
        throw new RangeError(`Predicted value ${predicted} at pixel ${p} is not a class in [0, ${n - 1}]`);
      }
      this.counts[predicted * n + truth] += 1;
    }
  }

  /** Adds the counts of another matrix over the same classes (for example from another worker). */
  merge(other: ConfusionMatrix): void {
    if (other.numClasses !== this.numClasses) {
      throw new RangeError(`Expected a matrix of ${this.numClasses} classes but received one of ${other.numClasses}`);
    }
    other.counts.forEach((count, i) => {
      this.counts[i] += count;
    });
  }

  metrics(): SegmentationMetrics {
    const n = this.numClasses;
    const truePositives = new Float64Array(n);
    const labelled = new Float64Array(n); // pixels whose true class is c
    const predicted = new Float64Array(n); // pixels predicted as c
    for (let p = 0; p < n; p += 1) {
      for (let t = 0; t < n; t += 1) {
        const count = this.counts[p * n + t];
        labelled[t] += count;
        predicted[p] += count;
      }
      truePositives[p] = this.counts[p * n + p];
    }
    const totalLabelled = labelled.reduce((a, b) => a + b, 0);
    const iou: (number | null)[] = [];
    const acc: (number | null)[] = [];
    let [iouSum, accSum, present, seen, weighted] = [0, 0, 0, 0, 0];
    for (let c = 0; c < n; c += 1) {
      if (labelled[c] + predicted[c] > 0) seen += 1;
      if (labelled[c] === 0) {
        iou.push(null);
        acc.push(null);
        continue;
      }
      const classIou = truePositives[c] / (labelled[c] + predicted[c] - truePositives[c]);
      const classAcc = truePositives[c] / labelled[c];
      iou.push(100 * classIou);
      acc.push(100 * classAcc);
      iouSum += classIou;
      accSum += classAcc;
      weighted += (classIou * labelled[c]) / totalLabelled;
      present += 1;
    }
    const percent = (value: number, count: number): number => (count > 0 ? (100 * value) / count : NaN);
    return {
      mIoU: percent(iouSum, seen),
      fwIoU: present > 0 ? 100 * weighted : NaN,
      mACC: percent(accSum, present),
      pACC: percent(truePositives.reduce((a, b) => a + b, 0), totalLabelled),
      iou,
      acc,
    };
  }
}
