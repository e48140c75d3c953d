// Incremental training on the device vs the CPU (test/cuda/il-train.ts), part 2 of 3: M²KD and
// its variants (pruning, masks, the teacher bank), and a device checkpoint resumed on the CPU.
import { stepByStep, resumeTest } from './il-train';

stepByStep(['m2kd', 'm2kd-noprune', 'm2kd-skip1', 'm2kd-skip2']);
resumeTest();
