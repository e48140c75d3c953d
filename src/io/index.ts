export * from './atomic';
export * from './safetensors';
export * from './checkpoint';
export * from './lock';
export * from './stale';
