// The emulated device's checks (npm run test:cuda with M2KD_ADDON=cuda-emu; skipped on a real
// GPU): each runs a deliberately broken kernel (kernels/cuda/emu/selftest/broken.cu) that the
// emulator must catch, as a JS exception naming the kernel, block, thread and address, and the
// corrected twin, whose values are checked. The process must survive every one of them.
import tap from 'tap';
import { cudaInfo } from '../../src/engine';
import { native } from '../../src/native';

const emulated = cudaInfo().available && typeof native.cuda_emu_selftest === 'function';

tap.test('emulated device checks', { skip: emulated ? false : 'not the emulated device (M2KD_ADDON=cuda-emu)' }, async (t) => {
  const run = (name: string): Float32Array => native.cuda_emu_selftest!(name) as Float32Array;
  const kernelBlockThread = /in kernel \S+ \(launched at broken\.cu:\d+\), block \(\d+,0,0\), thread \(\d+,0,0\)/;

  // 1. out-of-bounds global memory: a guard page after every allocation; a canary in the slack
  t.same(Array.from(run('inbounds').slice(0, 3)), [1, 1, 1], 'in-bounds twin runs and computes x + 1');
  t.throws(() => run('oob-write'), /cudaErrorIllegalAddress \(out-of-bounds global write in kernel oob_write_k .*block \(8,0,0\), thread \(0,0,0\): address 0x[0-9a-f]+ is byte 4096 of the 4096-byte device allocation/,
    'write one element past the end: kernel, block, thread, address');
  t.throws(() => run('oob-read'), /out-of-bounds global read in kernel oob_read_k .*block \(7,0,0\), thread \(127,0,0\): address 0x[0-9a-f]+ is byte 4096 of the 4096-byte/,
    'read one element past the end');
  t.throws(() => run('oob-write-small'), /out-of-bounds global write in kernel oob_write_k .*byte 40 of the 40-byte device allocation .*canary/,
    'a write into the alignment slack is found by the canary');
  t.throws(() => run('host-pointer'), /cudaErrorInvalidDevicePointer \(kernel neighbour_k<true> .*argument 0 is 0x[0-9a-f]+, not device memory/,
    'a host pointer passed as a kernel argument');

  // 2. shared-memory race (racecheck)
  t.same(Array.from(run('race-fixed').slice(0, 4)), [0, 0, 1, 2], 'race-free twin (barrier between write and read)');
  t.throws(() => run('race'), /emuSharedMemoryRace \(shared-memory race in kernel neighbour_k<false> .*block \(0,0,0\), thread \(1,0,0\): it reads an address that thread \(0,0,0\) wrote since the last barrier \(read-after-write race\): address 0x[0-9a-f]+ \(byte 0 of 's'\)/,
    'read of a neighbour\'s write without a barrier');

  // 3. uninitialised shared memory (initcheck)
  t.same(Array.from(run('uninit-fixed').slice(0, 3)), [126, 124, 122], 'fully written twin');
  t.throws(() => run('uninit'), /emuSharedMemoryUninitialized \(uninitialized shared-memory read in kernel partial_init_k<false> .*thread \(0,0,0\): address 0x[0-9a-f]+ \(byte 252 of 's'\) was never written/,
    'read of shared memory never written in this block');

  // 4. barrier divergence
  t.throws(() => run('barrier-exit'), /emuBarrierDivergence \(barrier divergence in kernel divergent_exit_k .*thread \(16,0,0\): it exited while 16 threads of its block wait at __syncthreads at broken\.cu:\d+/,
    'threads exit while others wait at a barrier');
  t.throws(() => run('barrier-sites'), /emuBarrierDivergence \(barrier divergence in kernel divergent_sites_k .*thread \(16,0,0\): it waits at __syncthreads at broken\.cu:\d+ while thread \(0,0,0\) waits at broken\.cu:\d+/,
    'threads wait at two different barriers');

  // 5. shuffle from an inactive lane
  // warp_sum by __shfl_down_sync, modelled here: a source lane past the warp returns the caller's own value
  const want: number[] = [];
  for (let w = 0; w < 2; w++) {
    let v = Array.from({ length: 32 }, (_, l) => l);
    for (let o = 16; o > 0; o >>= 1) v = v.map((x, l) => x + (l + o < 32 ? v[l + o] : x));
    want.push(...v);
  }
  t.same(Array.from(run('shuffle-fixed')), want, 'full-mask warp sum: every lane as the shuffle semantics give (lane 0: 496)');
  t.equal(want[0], 496);
  t.throws(() => run('shuffle'), /emuShuffleInactiveLane \(__shfl_down_sync at broken\.cu:\d+ in kernel shuffle_k<false> .*thread \(8,0,0\) \(lane 8\) reads lane 16, which is inactive \(not in the mask 0xffff\)/,
    'lane 8 reads lane 16, outside the mask');

  for (const c of ['oob-write', 'race', 'uninit', 'barrier-exit', 'shuffle']) {
    try { run(c); } catch (e) { t.match((e as Error).message, kernelBlockThread, `${c}: names kernel, block and thread`); }
  }
  // the device keeps working after every caught fault
  t.same(Array.from(run('race-fixed').slice(0, 3)), [0, 0, 1], 'the emulated device still runs kernels afterwards');
});
