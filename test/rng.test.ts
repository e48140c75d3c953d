// The counter-based RNG: known-answer test, reproducibility, streams, state round trip, and
// sane distributions.
import t from 'tap';
import { Rng, philox4x32 } from '../src/engine';

t.test('Philox4x32-10 known-answer vectors (Random123)', async (t) => {
  const out = new Uint32Array(4);
  philox4x32(0, 0, 0, 0, 0, 0, out);
  t.same(Array.from(out), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  philox4x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, out);
  t.same(Array.from(out), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
  t.same(Array.from(out), [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
});

t.test('same seed, same numbers; other seed or stream, other numbers', async (t) => {
  t.same(Array.from(new Rng(42).uniform(10)), Array.from(new Rng(42).uniform(10)));
  t.not(new Rng(42).uniform(1)[0], new Rng(43).uniform(1)[0]);
  t.not(new Rng(42, 0).uniform(1)[0], new Rng(42, 1).uniform(1)[0]);
});

t.test('state round trip resumes the exact sequence', async (t) => {
  const a = new Rng(7);
  a.uniform(5); // mid-block
  const s = a.state();
  const rest = Array.from(a.uniform(9));
  t.same(Array.from(Rng.fromState(s).uniform(9)), rest);
});

t.test('distributions', async (t) => {
  const r = new Rng(1);
  const u = r.uniform(20000);
  const mean = u.reduce((s, v) => s + v, 0) / u.length;
  t.ok(Math.abs(mean - 0.5) < 0.01, `uniform mean ${mean}`);
  t.ok(u.every((v) => v >= 0 && v < 1));
  const g = r.normal(20000, 0, 2);
  const gm = g.reduce((s, v) => s + v, 0) / g.length;
  const gv = g.reduce((s, v) => s + (v - gm) ** 2, 0) / g.length;
  t.ok(Math.abs(gm) < 0.05 && Math.abs(Math.sqrt(gv) - 2) < 0.05, `normal mean ${gm} std ${Math.sqrt(gv)}`);
  const p = r.permutation(100);
  t.same(Array.from(p).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  t.throws(() => new Rng(-1), /seed/);
});
