// SPDX-License-Identifier: Apache-2.0
/**
 * What `SanModel.segment` resolves to: the label map, the classes it indexes, optional scores and mask proposals,
 * and the ways to turn it into files.
 * @module
 */
import sharp from 'sharp';
import { RgbImage, renderOverlay } from './image';
import * as is from '../is';
import { Tensor } from '../runtime/tensor';

/** A label map: row-major [height, width] indices into `classes`, the same `{ type, dims, data }` as a tensor. */
export interface LabelMap {
  readonly type: 'uint16';
  readonly dims: readonly [number, number];
  readonly data: Uint16Array;
}

/** The 100 (Q) mask proposals behind a segmentation. */
export interface Proposals {
  /** float32 [Q, Hp/16, Wp/16]: each proposal's mask logits on the network's grid (the padded input / 16). */
  readonly maskLogits: Tensor<'float32'>;
  /** float32 [Q, C + 1]: each proposal's class probabilities, the last column the background. */
  readonly classProbs: Tensor<'float32'>;
}

/** One class's part of the label map. */
export interface ClassShare {
  readonly name: string;
  /** Fraction of the pixels labelled with this class, 0 to 1. */
  readonly share: number;
}

/** Options of {@link SegmentResult.toPng}. */
export interface ToPngOptions {
  /** Draw the classes over the input image (true) or as plain colours (false). @defaultValue `true` */
  overlay?: boolean;
}

export class SegmentResult {
  /** uint16 [height, width]: per pixel, the index into `classes` of its class. */
  readonly labels: LabelMap;
  /** The classes, as the caller gave them. */
  readonly classes: readonly string[];
  /** float32 [C, height, width]: per-class scores, when `scores: true` was asked for. */
  readonly scores?: Tensor<'float32'>;
  /** The mask proposals, when `proposals: true` was asked for. */
  readonly proposals?: Proposals;
  readonly #readBackground: () => Promise<RgbImage>;

  /** @internal Made by `SanModel.segment`; `readBackground` decodes the input at the labels' size. */
  constructor(fields: Pick<SegmentResult, 'labels' | 'classes' | 'scores' | 'proposals'>,
    readBackground: () => Promise<RgbImage>) {
    this.labels = fields.labels;
    this.classes = fields.classes;
    if (fields.scores) this.scores = fields.scores;
    if (fields.proposals) this.proposals = fields.proposals;
    this.#readBackground = readBackground;
  }

  get height(): number {
    return this.labels.dims[0];
  }

  get width(): number {
    return this.labels.dims[1];
  }

  /** Each class's share of the pixels, in the order of `classes`. */
  shares(): ClassShare[] {
    const counts = new Float64Array(this.classes.length);
    for (const label of this.labels.data) counts[label] += 1;
    return this.classes.map((name, i) => ({ name, share: counts[i] / this.labels.data.length }));
  }

  /**
   * The label map as a PNG with a legend: over the input image, or as plain class colours.
   * @example
   * ```ts
   * await fs.promises.writeFile('overlay.png', await result.toPng());
   * ```
   */
  async toPng(options: ToPngOptions = {}): Promise<Buffer> {
    if (!is.plainObject(options)) throw is.invalidParameterError('options', 'an object', options);
    is.knownOptions(options, 'options', ['overlay']);
    if (options.overlay !== undefined && !is.bool(options.overlay)) {
      throw is.invalidParameterError('options.overlay', 'a boolean', options.overlay);
    }
    const size = { height: this.height, width: this.width };
    const background = options.overlay === false ? undefined : await this.#readBackground();
    return renderOverlay(this.labels.data, this.classes, size, background);
  }

  /** The label map as a 16-bit greyscale PNG: each pixel's value is its class index. */
  async labelsPng(): Promise<Buffer> {
    // A Uint16Array input is what tells sharp the pixels are 16-bit.
    return sharp(this.labels.data, { raw: { width: this.width, height: this.height, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toBuffer();
  }
}
