// The engine: tensors, autograd, memory scopes, RNG and ops.
export { Tensor, tidy, keep, memory, emptyCache, checkDevice, cudaStatus, withDevice, getDefaultDevice, copyStats } from './tensor';
export { StagingBuffer } from './staging';
export type { StagedPart } from './staging';
export type { DType, Device, TensorOptions, GradNode } from './tensor';
export { noGrad, isGradEnabled, backward } from './autograd';
export { Rng, philox4x32 } from './rng';
export type { RngState } from './rng';
export * as ops from './ops';
export * from './runtime';
