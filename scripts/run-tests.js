#!/usr/bin/env node
// Runs the compiled tap suite (dist/test/**/*.test.js) and ends with one line
// "N passed, N failed" (counted from tap's own results), exiting non-zero on any failure.
// Extra arguments are passed to tap (e.g. a single test file).
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const fs = require('fs');

const root = path.resolve(__dirname, '..');
function findTests(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findTests(p));
    else if (e.name.endsWith('.test.js')) out.push(path.relative(root, p));
  }
  return out.sort();
}
const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const testDir = path.join(root, 'dist', 'test');
const targets = files.length ? files : fs.existsSync(testDir) ? findTests(testDir) : [];
if (targets.length === 0) {
  console.log('no test files found under dist/test (did tsc run?)');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const tapBin = path.join(path.dirname(require.resolve('tap/package.json', { paths: [root] })), 'dist', 'esm', 'run.mjs');
const child = spawn(
  process.execPath,
  [tapBin, '--disable-coverage', '--reporter=tap', '--timeout=600', '--jobs=1', ...flags, ...targets],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
);
let tail = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  tail = (tail + d.toString()).slice(-20000);
});
child.on('close', (code) => {
  // tap's closing summary: "# { total: 12, pass: 11, fail: 1, ... }"
  const m = tail.match(/#\s*\{\s*total:\s*(\d+)([^}]*)\}/g);
  let pass = 0, fail = 0;
  if (m) {
    const last = m[m.length - 1];
    const num = (k) => { const r = last.match(new RegExp(k + ':\\s*(\\d+)')); return r ? Number(r[1]) : 0; };
    pass = num('pass');
    fail = num('fail');
  }
  // a tap exit failure with no failing assertion counted (crash, timeout, bad plan) still fails
  if (code !== 0 && fail === 0) fail = 1;
  if (!m && code === 0) fail = 1;
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(fail > 0 || code !== 0 ? 1 : 0);
});
