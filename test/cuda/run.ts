// `npm run test:cuda`: runs the CUDA parity suite (test/cuda/*.cuda.ts, compiled to
// dist/test/cuda/*.cuda.js) through the tap runner where a CUDA device is usable: a real GPU
// (the CUDA build) or the emulated device (M2KD_ADDON=cuda-emu, the build of
// `npm run build:cuda-emu`, where the same kernels run on the CPU with race, bounds and
// initialisation checks). The first line says which one ran (the word `emulated` for the
// emulated device); elsewhere it says plainly why it skipped and exits 0. Ends with the line
// "N passed, N failed" either way. On the emulated device it also collects kernel coverage
// (test/cuda/zz-kernel-coverage.cuda.ts checks that every compiled kernel instance ran).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
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
const emulated = info.archs === 'emulated';
const env: NodeJS.ProcessEnv = { ...process.env, M2KD_ADDON: info.addonPath };
let coverage = '';
if (emulated) {
  console.log(`cuda: emulated device (the CUDA kernels run on the CPU as fibers; ${info.addonPath})`);
  coverage = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'm2kd-emu-')), 'coverage.txt');
  env.M2KD_EMU_COVERAGE = coverage;
} else {
  console.log(`cuda: real GPU ${info.deviceName} (compute ${info.computeCapability}), driver ${info.driverVersion}, runtime ${info.runtimeVersion}`);
}
const root = path.resolve(__dirname, '..', '..', '..');
const dir = __dirname;
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cuda.js')).sort().map((f) => path.relative(root, path.join(dir, f)));
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'run-tests.js'), ...files, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env,
});
if (coverage) fs.rmSync(path.dirname(coverage), { recursive: true, force: true });
process.exit(r.status ?? 1);
