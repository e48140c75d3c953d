// Sweeps as cells: the grid (sweep.json), the state of each cell, the local and Slurm executors,
// and the merge of finished cells into one results table.
export * from './grid';
export * from './status';
export * from './cell';
export * from './local';
export * from './slurm';
export * from './merge';
