// Every op of the engine, each with its gradient rule.
export * from './conv2d';
export * from './linear';
export * from './batchnorm';
export * from './elementwise';
export * from './shortcut';
export * from './pool';
export * from './loss';
export * from './columns';
export * from './hflip';
export * from './sgd';
export * from './maskedConv';
