// Kernel coverage of the CUDA suite on the emulated device (runs last: test/cuda/run.ts sorts
// the files). Every kernel instance a launch site names registers itself when the emulated
// addon loads, and every launch is recorded, appended by each test process to the file named
// by M2KD_EMU_COVERAGE (set by run.ts). Every compiled instance must have run at least once:
// a tile shape or template instance that no case reaches fails here, by name.
import * as fs from 'fs';
import tap from 'tap';

const file = process.env.M2KD_EMU_COVERAGE ?? '';

tap.test('every compiled CUDA kernel instance ran on the emulated device', {
  skip: file && fs.existsSync(file) ? false : 'no coverage file (only under `M2KD_ADDON=cuda-emu npm run test:cuda`)',
}, async (t) => {
  const compiled = new Set<string>(), launched = new Set<string>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const kind = line.slice(0, sp), name = line.slice(sp + 1);
    if (kind === 'compiled') compiled.add(name);
    else if (kind === 'launched') launched.add(name);
  }
  t.ok(compiled.size > 0, 'the emulated addon registered its kernels');
  const missing = [...compiled].filter((k) => !launched.has(k)).sort();
  t.same(missing, [], 'kernel instances never launched');
  t.comment(`emulated device: ${launched.size} of ${compiled.size} compiled kernel instances launched`);
  process.stdout.write(`# kernels: ${launched.size} of ${compiled.size} compiled kernel instances launched on the emulated device\n`);
});
