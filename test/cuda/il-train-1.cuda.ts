// Incremental training on the device vs the CPU (test/cuda/il-train.ts), part 1 of 3: the
// exemplar-free distillation baselines, and a device checkpoint loaded and continued on the CPU.
// Split in three files so each stays within the runner's per-file timeout on a loaded 2-core
// CI machine under emulation.
import { stepByStep, resumeTest } from './il-train';

stepByStep(['ft', 'lwf-mc', 'lwf-mc-aux', 'lwf-mc-mmd']);
resumeTest();
