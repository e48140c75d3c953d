export * from './atomic';
export * from './safetensors';
export * from './checkpoint';
