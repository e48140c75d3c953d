// The report layer: results.json (write/read/validate), tables, plots (SVG → PNG with sharp),
// and the report/compare commands used by the CLI. Holds no math beyond means and stds.
export * from './results';
export * from './summary';
export * from './tables';
export * from './plots';
export * from './commands';
export * as svg from './svg';
