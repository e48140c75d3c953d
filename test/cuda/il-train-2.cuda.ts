// Incremental training on the device vs the CPU (test/cuda/il-train.ts), part 2 of 3: M²KD and
// its variants (pruning phase by phase: masks pruned on the device equal the CPU's).
import { stepByStep } from './il-train';

stepByStep(['m2kd', 'm2kd-noprune', 'm2kd-skip1', 'm2kd-skip2']);
