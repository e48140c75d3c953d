// The kernel workbenches (kernels/cpu/workbench): every kernel entry point against a double
// precision reference at every ISA level, outside Node. Built with g++ and the addon's flags.
import t from 'tap';
import * as path from 'path';
import { spawnSync } from 'child_process';

const wbDir = path.resolve(__dirname, '..', '..', 'kernels', 'cpu', 'workbench');

for (const [script, binary] of [['build.sh', 'wb'], ['build_ops.sh', 'ops_bench']] as const)
  t.test(`workbench ${binary}: build and validate`, async (t) => {
    const b = spawnSync('bash', [path.join(wbDir, script)], { encoding: 'utf8', timeout: 300_000 });
    t.equal(b.status, 0, `build: ${(b.stderr || '').slice(-2000)}`);
    if (b.status !== 0) return;
    const r = spawnSync(path.join(wbDir, binary), [], { encoding: 'utf8', timeout: 120_000 });
    const lines = (r.stdout || '').split('\n');
    const failed = lines.filter((l) => l.startsWith('not ok'));
    const passed = lines.filter((l) => l.startsWith('ok')).length;
    t.equal(r.status, 0, `exit ${r.status}; ${failed.slice(0, 5).join(' | ')}`);
    t.same(failed, [], 'no failing check');
    t.ok(passed > 500, `${passed} checks passed`);
  });
