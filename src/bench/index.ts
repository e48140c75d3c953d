export * from './stats';
export * from './train';
