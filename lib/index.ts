// SPDX-License-Identifier: Apache-2.0
/**
 * san-node: SAN open-vocabulary semantic segmentation on LibTorch.
 *
 * ```ts
 * import { SanModel } from 'san-node';
 * const model = await SanModel.load('models/vit_b_16');
 * const result = await model.segment('photo.jpg', { classes: ['sky', 'tree', 'person'] });
 * ```
 * @packageDocumentation
 */
export { SanModel, SAN_MODEL_DEFAULTS, MAX_CLASSES, MAX_CLASS_LENGTH, MAX_OUTPUT_SIDE } from './segment/model';
export type { SanModelOptions, SegmentOptions, EncodeTextOptions, Templates, Synonyms, SanModelMetrics } from './segment/model';
export { SEGMENT_MANY_DEFAULTS } from './segment/stream';
export type { SegmentManyOptions, SegmentManyItem } from './segment/stream';
export type { ServingMetrics, LatencyPercentiles } from './segment/serving-stats';
export type { CudaMemory } from './runtime/native';
export { DynamicBatcher, DYNAMIC_BATCHER_DEFAULTS } from './segment/batcher';
export type { DynamicBatcherOptions, SubmitOptions, BatchInfo, BatcherStats, OnFull } from './segment/batcher';
export { SegmentResult } from './segment/result';
export type { LabelMap, Proposals, ClassShare, ToPngOptions } from './segment/result';
export { readModelDir, MANIFEST_FORMAT_VERSION } from './segment/model-dir';
export type { Manifest, ModelDir } from './segment/model-dir';
export { importCheckpoint, IMPORT_DEFAULTS } from './import/import';
export type { ImportOptions, ImportResult } from './import/import';
export { ErrorCode, SanError } from './errors';
export type { SanErrorCode } from './errors';
export { tensor, checkTensor, elementCount, TENSOR_TYPES } from './runtime/tensor';
export type { Tensor, TensorType, TensorData } from './runtime/tensor';
export { TorchModel, TORCH_MODEL_DEFAULTS } from './runtime/torch-model';
export { cpuAllocatorStats, setCpuCacheLimit } from './runtime/cpu-allocator';
export type { CpuAllocatorStats } from './runtime/cpu-allocator';
export type { TorchModelOptions, RunOptions, ModelDtype, Argument, Result } from './runtime/torch-model';
export { ClipTokenizer } from './segment/tokenizer';
export { TEMPLATE_SETS, VILD_TEMPLATES, SINGLE_TEMPLATES } from './segment/prompts';
export { TextEmbeddingCache } from './segment/text-cache';
export type { TextCacheOptions, TextCacheStats } from './segment/text-cache';
export { ConfusionMatrix } from './eval/metrics';
export type { LabelArray, SegmentationMetrics } from './eval/metrics';
export { agreement } from './eval/agreement';
export type { Agreement, ComparedSegmentation } from './eval/agreement';
export {
  evaluate, scoreLabelMaps, readLabelMap, pairFiles, EVALUATE_DEFAULTS, LABEL_EXTENSIONS, IMAGE_EXTENSIONS,
} from './eval/evaluate';
export type {
  EvaluateOptions, EvaluationResult, EvaluationPair, EvaluationFolders, ImageCounts, LabelMapFile, PairBy,
  PairFilesOptions, ReadLabelMapOptions,
} from './eval/evaluate';
export { SAN_RESIZE_POLICY, modelScaleSize, renderOverlay } from './segment/image';
export type { ImageInput, RgbImage, ResizePolicy } from './segment/image';
export {
  startServer, SERVE_DEFAULTS, ServeErrorCode, encodeRle, decodeRle, registerModelMetrics,
} from './serve/server';
export type { ServeOptions, SanServer, SegmentBody, LabelsBody, LabelFormat, DrainReport } from './serve/server';
export { SegmentQueue, SegmentJob, SEGMENT_QUEUE_DEFAULTS } from './queue/queue';
export type { SegmentQueueOptions, AddOptions, QueueImage } from './queue/queue';
export { SegmentWorker, SEGMENT_WORKER_DEFAULTS } from './queue/worker';
export type { SegmentWorkerOptions } from './queue/worker';
export type { SegmentJobData, JobImage, JobSegmentOptions, SegmentJobResult, JobTimings, ResultStore } from './queue/job-data';
export type { RedisTarget } from './queue/connection';
