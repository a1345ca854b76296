/**
 * Prints one plain closing line after vitest's own summary:
 *
 *   tests: 819 passed, 0 failed, 2 skipped
 *
 * vitest's summary is coloured and laid out for people; this line is for
 * tools (CI reads a run's closing line to tell a green run from one that
 * executed nothing). Failed counts tests that failed plus errors outside any
 * test (a failing hook or an unhandled rejection), so it is never 0 on a red run.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class ClosingLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0,
      failed = 0,
      skipped = 0;
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A module that failed outside its tests (import error, failing beforeAll) counts once.
      if (mod.state() === 'failed' && ![...mod.children.allTests('failed')].length) failed++;
    }
    failed += unhandledErrors.length;
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
