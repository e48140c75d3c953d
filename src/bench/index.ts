export * from './stats';
export * from './train';
export * from './reconstruct';
