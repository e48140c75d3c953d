// The prune layer: step masks, magnitude pruning, per-step snapshots and the teacher bank.
export * from './types';
export * from './masks';
export * from './snapshot';
export * from './teacherBank';
