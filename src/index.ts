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
export * from './prune';
export * as il from './il';
export * as report from './report';
export { train, sweep, planSweep, runSweep, createExperiment, resolveConfig, resolveOrders, resolveMethods, loadTrainDataset, PRESETS } from './api';
export type { TrainOptions, TrainOutcome, SweepOptions, SweepOutcome } from './api';
export * as sweeps from './sweep';
export type { RunResults, MethodResult, OrderResult, StepResult, MemoryBreakdown } from './il/results';
export type { IlConfig } from './il/config';
export type { IlEvent } from './il/trainer';
