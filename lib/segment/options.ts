// SPDX-License-Identifier: Apache-2.0
/**
 * The options of one segmentation and of text encoding, as data: `SanModel` checks them, and `segmentMany` /
 * `segmentStream` pass them through, so both import them from here rather than from each other.
 * @module
 */
import type { TemplateSetName } from './prompts';

/** The prompt templates: a set's name or a list of templates, each with a `{}` where the class name goes. */
export type Templates = TemplateSetName | readonly string[];

/**
 * How a class name with commas ("person, someone") is prompted: `'whole'` puts the whole string in each template,
 * as SAN's reference does; `'average'` prompts each synonym alone and averages their embeddings.
 */
export type Synonyms = 'whole' | 'average';

/** Options of `SanModel.segment`. */
export interface SegmentOptions {
  /** The vocabulary: 1 to 4096 class names in plain words; a name may list synonyms ("person, someone"). */
  classes: readonly string[];
  /** Prompt templates. @defaultValue the manifest's set (`'vild'`, 14 templates) */
  templates?: Templates;
  /** How names with commas are prompted. @defaultValue `'whole'` */
  synonyms?: Synonyms;
  /**
   * Resize the image under the manifest's policy (short side 640, long side at most 2560, bilinear); `false` when
   * the input is already at model scale (then at most 2560 on its long side and 640×2560 pixels in all, else
   * ERR_SAN_TOO_LARGE). @defaultValue `true`
   */
  resize?: boolean;
  /**
   * [height, width] of the returned maps, each 1 to 16384, and at most the model's `maxOutputPixels` in all.
   * @defaultValue the input's own size
   */
  outputSize?: readonly [number, number];
  /** Return per-class scores, float32 [C, height, width]. @defaultValue `false` */
  scores?: boolean;
  /** Return the mask proposals (mask logits and per-mask class probabilities). @defaultValue `false` */
  proposals?: boolean;
  /**
   * Cancels the request: it rejects at once with an `AbortError`, and stops at the next stage (decoding, each
   * text-encoder chunk, the batch queue); a batch already running finishes and its result is dropped.
   */
  signal?: AbortSignal;
  /**
   * Rejects with ERR_SAN_TIMEOUT when no answer came within this many milliseconds, and stops the request's work at
   * its next stage as `signal` does. @defaultValue none
   */
  timeoutMs?: number;
}

/** Options of `SanModel.encodeText`. */
export interface EncodeTextOptions {
  /** Prompt templates. @defaultValue the manifest's set */
  templates?: Templates;
  /** How names with commas are prompted. @defaultValue `'whole'` */
  synonyms?: Synonyms;
  /** Stops the encoding between text-encoder chunks and rejects with an `AbortError`. @defaultValue none */
  signal?: AbortSignal;
  /** Rejects with ERR_SAN_TIMEOUT after this many milliseconds, and stops encoding. @defaultValue none */
  timeoutMs?: number;
}

/** Every option name `SanModel.segment` takes; any other is refused. */
export const SEGMENT_OPTION_NAMES: readonly string[] = Object.freeze(['classes', 'templates', 'synonyms', 'resize',
  'outputSize', 'scores', 'proposals', 'signal', 'timeoutMs']);
/** Every option name `SanModel.encodeText` takes. */
export const ENCODE_TEXT_OPTION_NAMES: readonly string[] = Object.freeze(['templates', 'synonyms', 'signal', 'timeoutMs']);

