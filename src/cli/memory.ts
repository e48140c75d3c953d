// `m2kd memory`: what each method keeps beyond the current model after every step of a protocol
// (the paper's Table 2), from the byte counts a run uses (il/memory.ts). Holds no math.
import { Flags } from './args';
import { memoryPlan } from '../il/memory';
import { parseMethods } from '../il/methods';
import { parseArch } from '../nn/auxnet';
import { renderTable, fmtBytes } from '../report';

export const MEMORY_USAGE = `  m2kd memory [options]             bytes each method keeps beyond the current model (the paper's Table 2)
      --arch resnet32|resnet18 (resnet32)  --classes N (100)  --classes-per-step n (10)
      --exemplars M (2000, iCaRL)  --image-bytes B (3 × side² u8: 3072 for resnet32, 150528 for resnet18)
      --method NAME[,NAME...] (ft,lwf-mc,m2kd,m2kd-noprune,icarl)  --per-step  --json`;

const MB = 1e6;

export function memoryCommand(f: Flags): void {
  const arch = parseArch(f.str('arch', 'resnet32'));
  const classes = f.int('classes', 100);
  const cps = f.int('classes-per-step', 10);
  const exemplars = f.int('exemplars', 2000, 0);
  const side = arch === 'resnet18' ? 224 : 32;
  const imageBytes = f.int('image-bytes', 3 * side * side);
  const methods = parseMethods(f.str('method', 'ft,lwf-mc,m2kd,m2kd-noprune,icarl'));
  const perStep = f.bool('per-step');
  const json = f.bool('json');
  f.done();
  const rows = memoryPlan({ arch, classes, classesPerStep: cps, methods, exemplars, imageBytes });
  const T = classes / cps;
  const last = (r: (typeof rows)[number]) => r.perStep[T - 1];
  const lwf = rows.find((r) => r.method.name === 'lwf-mc');
  if (json) {
    console.log(JSON.stringify({ arch, classes, classes_per_step: cps, steps: T, exemplars, image_bytes: imageBytes, methods: Object.fromEntries(rows.map((r) => [r.method.name, { final: last(r), per_step: r.perStep }])) }, null, 2));
    return;
  }
  const mb = (b: number) => (b / MB).toFixed(2);
  console.log(
    renderTable({
      title: `Kept beyond the current model after the last of ${T} steps: ${arch}, ${classes} classes, ${cps} per step (MB = 10^6 bytes)`,
      headers: ['method', 'masks', 'BN', 'heads', 'full snapshots', 'exemplars', 'total MB', ...(lwf ? ['paper-style MB'] : []), 'total'],
      align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', ...(lwf ? ['right' as const] : []), 'right'],
      rows: rows.map((r) => {
        const m = last(r);
        // the paper's Table 2 counts beyond LwF's footprint (the current and one previous model):
        // a method that keeps full snapshots is charged for all but one of them
        const paper = m.total - (m.snapshots > 0 && lwf ? last(lwf).snapshots : 0);
        return [r.method.label, mb(m.masks), mb(m.bn), mb(m.heads), mb(m.snapshots), mb(m.exemplars), mb(m.total), ...(lwf ? [mb(paper)] : []), fmtBytes(m.total)];
      }),
      notes: [
        `masks: ${Math.max(1, Math.ceil(Math.log2(T + 1)))} bits per conv weight; BN and heads: one snapshot per kept step; full snapshots: whole models (state dict, float32);`,
        `exemplars: floor(${exemplars} / C) × C images of ${imageBytes} bytes + 4-byte labels;`,
        `paper-style: beyond LwF-MC's footprint, the paper's Table 2 baseline (one previous model is not charged to methods that keep full models)`,
      ],
    }),
  );
  if (perStep)
    console.log(
      renderTable({
        title: 'Total kept after each step (MB)',
        headers: ['step', 'classes', ...rows.map((r) => r.method.label)],
        rows: Array.from({ length: T }, (_, i) => [String(i + 1), String((i + 1) * cps), ...rows.map((r) => mb(r.perStep[i].total))]),
      }),
    );
}
