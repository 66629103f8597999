// SPDX-License-Identifier: Apache-2.0
/**
 * san-node: SAN open-vocabulary semantic segmentation on LibTorch.
 *
 * ```ts
 * import { SanModel } from 'san-node';
 * const model = await SanModel.load('models/san_vit_b_16');
 * const result = await model.segment('photo.jpg', { classes: ['sky', 'tree', 'person'] });
 * ```
 * @packageDocumentation
 */
export { SanModel, SAN_MODEL_DEFAULTS, MAX_CLASSES, MAX_CLASS_LENGTH, MAX_OUTPUT_SIDE } from './model';
export type { SanModelOptions, SegmentOptions, EncodeTextOptions, Templates, Synonyms, SanModelMetrics } from './model';
export { SEGMENT_MANY_DEFAULTS } from './stream';
export type { SegmentManyOptions, SegmentManyItem } from './stream';
export type { ServingMetrics, LatencyPercentiles } from './serving-stats';
export type { CudaMemory } from './native';
export { DynamicBatcher, DYNAMIC_BATCHER_DEFAULTS } from './batcher';
export type { DynamicBatcherOptions, SubmitOptions, BatchInfo, BatcherStats, OnFull } from './batcher';
export { SegmentResult } from './segment-result';
export type { LabelMap, Proposals, ClassShare, ToPngOptions } from './segment-result';
export { readModelDir, MANIFEST_FORMAT_VERSION } from './model-dir';
export type { Manifest, ModelDir } from './model-dir';
export { ErrorCode, SanError } from './errors';
export type { SanErrorCode } from './errors';
export { tensor, checkTensor, elementCount, TENSOR_TYPES } from './tensor';
export type { Tensor, TensorType, TensorData } from './tensor';
export { TorchModel, TORCH_MODEL_DEFAULTS } from './torch-model';
export type { TorchModelOptions, RunOptions, ModelDtype, Argument, Result } from './torch-model';
export { ClipTokenizer } from './tokenizer';
export { TEMPLATE_SETS, VILD_TEMPLATES, SINGLE_TEMPLATES } from './prompts';
export { TextEmbeddingCache } from './text-cache';
export type { TextCacheOptions, TextCacheStats } from './text-cache';
export { ConfusionMatrix } from './metrics';
export type { LabelArray, SegmentationMetrics } from './metrics';
export {
  evaluate, scoreLabelMaps, readLabelMap, pairFiles, EVALUATE_DEFAULTS, LABEL_EXTENSIONS, IMAGE_EXTENSIONS,
} from './evaluate';
export type {
  EvaluateOptions, EvaluationResult, EvaluationPair, EvaluationFolders, ImageCounts, LabelMapFile, PairBy,
  PairFilesOptions, ReadLabelMapOptions,
} from './evaluate';
export { SAN_RESIZE_POLICY, modelScaleSize, renderOverlay } from './image';
export type { ImageInput, RgbImage, ResizePolicy } from './image';
export { startServer, SERVE_DEFAULTS, ServeErrorCode, encodeRle, decodeRle, prometheusText } from './serve';
export type { ServeOptions, SanServer, SegmentBody, LabelsBody, LabelFormat } from './serve';
