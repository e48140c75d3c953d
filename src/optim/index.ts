export * from './sgd';
export * from './schedule';
