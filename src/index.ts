// m2kd: the library. Everything the CLI does is available from here, typed.
export * from './engine';
export * from './nn';
export * from './optim';
export * from './data';
export * from './io';
export * from './train';
export * as bench from './bench';
export { native, addonPath } from './native';
export type { MemoryStats, RuntimeInfo } from './native';
