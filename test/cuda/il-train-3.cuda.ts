// Incremental training on the device vs the CPU (test/cuda/il-train.ts), part 3 of 3: iCaRL
// and its variants (exemplars, herding, nearest-mean), the teacher bank on both devices, masks
// from the same weights, and the library API / benchmark with device 'cuda'.
import { stepByStep, bankTest, masksTest, apiTest } from './il-train';

stepByStep(['icarl', 'icarl-aux', 'icarl-m2kd']);
bankTest();
masksTest();
apiTest();
