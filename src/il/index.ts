// The incremental-learning layer: protocol, methods, trainer, experiment, metrics, exemplars,
// checkpoints and the result types.
export * from './results';
export * from './protocol';
export * from './methods';
export * from './config';
export * from './metrics';
export * from './exemplars';
export * from './trainer';
export * from './experiment';
export * from './checkpoint';
export * from './memory';
