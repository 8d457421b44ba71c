/** Helpers shared by the lifecycle workflows (deterministic, no I/O). */
import type { LifecycleStatus } from '../../src/definitions';
import type { EventSet, SesEvent } from './lifecycle';

/** How many recent events the status query and the UI details show. */
const LATEST_EVENTS = 20;

/** The most recent events by event time (ties by id), newest last. */
export function latestEvents(events: EventSet): LifecycleStatus['latestEvents'] {
  return events
    .values()
    .sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : a.id < b.id ? -1 : 1))
    .slice(-LATEST_EVENTS)
    .map((e) => ({ type: e.type, timestamp: e.timestamp, recipients: e.recipients, sesMessageId: e.sesMessageId }));
}

/** Drops bulky detail that derivation does not need, to keep continue-as-new payloads small. */
export function compactEvent(e: SesEvent): SesEvent {
  if (e.type !== 'Open' && e.type !== 'Click') return e;
  const { engagement: _engagement, snsMessageId: _sns, ...rest } = e;
  return rest;
}

/** Markdown shown as "current details" in the Temporal Web UI. */
export function renderDetails(s: LifecycleStatus): string {
  const lines = [
    `**${s.kind === 'orphan' ? 'Orphan events' : 'Email'}: ${s.status}** (phase: ${s.phase})`,
    '',
    // One bullet per recipient: the Web UI renders markdown tables without borders or padding.
    ...s.recipients.map((r) => {
      const detail = [
        r.bounceType ? `${r.bounceType}/${r.bounceSubType ?? ''}` : '',
        r.autoReplies ? `auto-replies: ${r.autoReplies}` : '',
        r.opens ? `opens: ${r.opens}` : '',
        r.clicks ? `clicks: ${r.clicks}` : '',
        r.attempts > 1 ? `attempts: ${r.attempts}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      return `- ${r.email}: **${r.status}**${detail ? ` (${detail})` : ''}`;
    }),
    '',
    `SES message ids: ${s.sesMessageIds.join(', ') || '—'}`,
    '',
    'Latest events:',
    '',
    ...s.latestEvents.slice(-10).map((e) => `- ${e.timestamp} ${e.type} ${e.recipients.join(', ')}`),
  ];
  if (s.followUps.length) lines.push('', 'Follow-ups:', '', ...s.followUps.slice(-10).map((f) => `- ${f.at} ${f.kind}: ${f.detail}`));
  if (s.sendError) lines.push('', `Send error: ${s.sendError.type}: ${s.sendError.message}`);
  return lines.join('\n');
}
