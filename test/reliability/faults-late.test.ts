/**
 * Fault: a late event. A Complaint arrives (signed, through the real webhook) after its
 * lifecycle has closed. Rule 7: it is never dropped — the webhook routes it to
 * `orphan-<sesMessageId>`, the orphan lifecycle records it, shows `complained`, and still runs
 * the follow-up: the address lands on the SES account suppression list.
 */
import { GetSuppressedDestinationCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { afterAll, expect, it, vi } from 'vitest';
import { SA, statusQuery, WORKFLOW_ID_PREFIX, type LifecycleStatus } from '../../src/definitions';
import type { RunningStack } from '../../src/stack';
import { sesEventJson } from '../helpers/ses-json';
import { acceptedFor, duplicateSends, ledgerFigures, postSignedEvent, resultsWithProgress, simAddress, startFaultStack, until, withFigure } from './helpers';
import { HANG_GUARD_MS, sandboxSettled } from '../helpers/wait';

// These scenarios take as long as the machine needs; their progress watchdogs decide failure.
vi.setConfig({ testTimeout: HANG_GUARD_MS });

let stack: RunningStack | undefined;
let ses: SESv2Client | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
  ses?.destroy();
  await stack?.stop();
});

async function suppressionReason(client: SESv2Client, email: string): Promise<string | undefined> {
  try {
    const out = await client.send(new GetSuppressedDestinationCommand({ EmailAddress: email }));
    return out.SuppressedDestination?.Reason;
  } catch (err) {
    if ((err as { name?: string }).name === 'NotFoundException') return undefined;
    throw err;
  }
}

it('a Complaint after the lifecycle closed still suppresses the address and is visible (orphan lifecycle)', async () => {
  await withFigure('late complaint after close', async (fig) => {
    stack = await startFaultStack({ name: 'faults-late', sandbox: { maxSendRate: 50, sns: { retryDelayMs: 200 } } });
    const sandbox = stack.sandbox!;
    ses = new SESv2Client({ region: sandbox.region, endpoint: sandbox.endpoint, credentials: sandbox.credentials, maxAttempts: 1 });
    const to = simAddress('success', `late${Date.now()}`);

    // 1. A normal lifecycle that closes as delivered.
    const email = await stack.lc.sendTracked({ from: 'app@example.com', to: [to], subject: 'late', text: 'x', policy: { deliveryDeadline: '2s', complaintWindow: '1s' } });
    const closed = (await resultsWithProgress(stack.client, [email], 20_000))[0]!;
    expect(closed.recipients[0]!.status).toBe('delivered');
    const sesMessageId = closed.sesMessageIds[0]!;
    expect(await suppressionReason(ses, to)).toBeUndefined();
    await sandboxSettled(sandbox);

    // 2. The late Complaint, signed like SNS signs it, posted to the webhook.
    const event = sesEventJson('Complaint', { messageId: sesMessageId, recipients: [to], at: new Date().toISOString(), lifecycleId: email.id });
    fig.injected = 1;
    const res = await postSignedEvent(stack, event);
    expect(res).toMatchObject({ status: 200, body: { status: 'recorded' } });

    // 3. Recorded in an orphan lifecycle that shows `complained` and ran the suppression.
    const orphanId = `${WORKFLOW_ID_PREFIX.orphan}${sesMessageId}`;
    const orphan = stack.client.workflow.getHandle(orphanId);
    cleanups.push(() => orphan.terminate('test done'));
    const status = await until(
      'the orphan lifecycle to record the complaint and suppress',
      async () => {
        const s = await orphan.query(statusQuery).catch(() => undefined);
        return s && s.recipients[0]?.status === 'complained' && s.followUps.some((f) => f.kind === 'suppressed') ? s : undefined;
      },
      20_000,
      200,
    );
    expect(status).toMatchObject({ kind: 'orphan', status: 'complained', eventsRecorded: 1 } satisfies Partial<LifecycleStatus>);
    expect(status.recipients[0]).toMatchObject({ email: to, status: 'complained', complaintFeedbackType: 'abuse' });

    // 4. The address is on the SES account suppression list, for COMPLAINT.
    const reason = await until('the address on the account suppression list', () => suppressionReason(ses!, to), 20_000, 200);
    expect(reason).toBe('COMPLAINT');

    // 5. Visible in the Temporal UI: the orphan is searchable by SES message id, status complained.
    const description = await orphan.describe();
    expect(description.typedSearchAttributes.get(SA.kind)).toBe('orphan');
    const listed = await until(
      'the orphan to be listed by SesMessageIds with EmailStatus complained',
      async () => {
        const ids: string[] = [];
        for await (const wf of stack!.client.workflow.list({ query: `SesMessageIds = "${sesMessageId}" AND LifecycleKind = "orphan" AND EmailStatus = "complained"` })) ids.push(wf.workflowId);
        return ids.length > 0 ? ids : undefined;
      },
      20_000,
      300,
    );
    expect(listed).toEqual([orphanId]);
    // The closed message lifecycle is untouched (still delivered, never reopened).
    expect((await resultsWithProgress(stack.client, [email], 5_000))[0]!.recipients[0]!.status).toBe('delivered');

    const ledger = ledgerFigures(sandbox);
    fig.eventsPublished = ledger.distinct + 1; // the sandbox's events + the late complaint
    fig.eventsRecorded = closed.eventsRecorded + status.eventsRecorded;
    fig.duplicateSends = duplicateSends(sandbox, [closed]);
    fig.notes.push(`orphan ${orphanId.slice(0, 20)}… complained; suppression reason ${reason}; accepted sends ${acceptedFor(sandbox, email.id).length}`);
    expect(ledger.undelivered).toEqual([]);
    expect(fig.eventsRecorded).toBe(fig.eventsPublished);
    expect(fig.duplicateSends).toBe(0);
  });
});
