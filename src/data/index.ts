export * from './dataset';
export * from './mnist';
export * from './idx';
export * from './cifar';
export * from './folder';
export * from './transforms';
export * from './registry';
