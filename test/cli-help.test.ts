// `m2kd <command> --help` / `-h` / `m2kd help <command>`: each command prints its own usage and
// exits 0, as a new user would try it, without running anything.
import t from 'tap';
import { main, commandUsage } from '../src/cli/main';

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    const code = await main(argv);
    return { code, out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

const commands = ['train', 'sweep', 'report', 'compare', 'memory', 'doctor', 'train-mnist', 'bench'];

t.test('every command prints its own usage for --help, -h and help <command>', async (t) => {
  for (const cmd of commands) {
    const usage = commandUsage(cmd);
    t.match(usage, new RegExp(`^usage:\\n  m2kd ${cmd}( |$)`, 'm'), `${cmd}: usage starts with the command`);
    for (const argv of [[cmd, '--help'], [cmd, '-h'], ['help', cmd]]) {
      const r = await run(argv);
      t.equal(r.code, 0, `m2kd ${argv.join(' ')} exits 0`);
      t.equal(r.out, usage, `m2kd ${argv.join(' ')} prints the usage of ${cmd}`);
    }
  }
  t.notMatch(commandUsage('train'), /m2kd train-mnist/, 'train does not print train-mnist');
  t.notMatch(commandUsage('train'), /m2kd sweep/, 'train does not print sweep');
  t.match(commandUsage('bench'), /m2kd bench train[\s\S]*m2kd bench reconstruct/, 'bench lists both benchmarks');
  t.match(commandUsage('train'), /--dataset/, 'train lists its options');
  t.match(commandUsage('memory'), /--arch resnet32\|resnet18[\s\S]*--image-bytes/, 'memory lists its options');
});
