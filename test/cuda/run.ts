// `npm run test:cuda`: runs the CUDA parity suite (test/cuda/*.cuda.ts, compiled to
// dist/test/cuda/*.cuda.js) through the tap runner where a CUDA device is usable; elsewhere it
// says plainly why it skipped and exits 0. Ends with the line "N passed, N failed" either way.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { cudaInfo } from '../../src/engine';

const info = cudaInfo();
if (!info.available) {
  const why = !info.compiled
    ? `the loaded addon (${info.addonPath}) is the CPU build${info.fallback ? `: ${info.fallback}` : ''}`
    : info.reason;
  console.log(`skipped: no CUDA device (${why})`);
  console.log('0 passed, 0 failed');
  process.exit(0);
}
console.log(`cuda: ${info.deviceName} (compute ${info.computeCapability}), driver ${info.driverVersion}, runtime ${info.runtimeVersion}`);
const root = path.resolve(__dirname, '..', '..', '..');
const dir = __dirname;
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cuda.js')).sort().map((f) => path.relative(root, path.join(dir, f)));
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'run-tests.js'), ...files, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, M2KD_ADDON: info.addonPath },
});
process.exit(r.status ?? 1);
