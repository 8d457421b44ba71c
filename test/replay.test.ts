/**
 * Deploy safety: every recorded history of every lifecycle path (test/replay/histories/<code
 * version>/, recorded with `npm run replay:record -- <label>`) must replay on today's workflow
 * code. A change that would break lifecycles already open in production (non-determinism) fails
 * here, in CI, before it is deployed. See README "Deploying workflow changes".
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { expect, inject, it } from 'vitest';

const ROOT = path.join(__dirname, 'replay', 'histories');
const histories = readdirSync(ROOT).flatMap((version) =>
  readdirSync(path.join(ROOT, version))
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ version, name: f.replace(/\.json$/, ''), file: path.join(ROOT, version, f) })),
);

try {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
} catch {
  // installed already in this process
}

it(`replays ${histories.length} recorded histories of every path on today's workflow code`, async () => {
  expect(histories.length).toBeGreaterThanOrEqual(17);
  const failures: string[] = [];
  const replayed: string[] = [];
  const source = histories.map((h) => ({ workflowId: `${h.version}/${h.name}`, history: JSON.parse(readFileSync(h.file, 'utf8')) as object }));
  for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: 'ci-replay' }, source)) {
    replayed.push(r.workflowId);
    if (r.error) failures.push(`${r.workflowId}: ${r.error.message.split('\n')[0]}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toHaveLength(histories.length);
});

it('a history that does not match the code is reported (the suite can fail)', async () => {
  const h = histories.find((x) => x.name === 'happy')!;
  const history = JSON.parse(readFileSync(h.file, 'utf8')) as { events: { eventType?: string; activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } }[] };
  // Rename the scheduled activity: replaying must detect the mismatch.
  const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!;
  scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'somethingElse';
  await expect(Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') } }, history)).rejects.toThrow(/[Nn]ondeterminis|DeterminismViolation|doesn't match|mismatch/);
});
