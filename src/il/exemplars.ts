// iCaRL's exemplars (Rebuffi et al., CVPR 2017), in four parts: features.ts (normalised features
// with flip averaging), herding.ts (herding selection), nme.ts (class means and the
// nearest-mean-of-exemplars classifier) and exemplarMemory.ts (the fixed-budget memory with its
// lossless palette storage and saved state). This module is their one import point.
export { l2normalizeRows, extractFeatures } from './features';
export type { ImageBatch, ExtractedFeatures } from './features';
export * from './herding';
export * from './nme';
export * from './exemplarMemory';
