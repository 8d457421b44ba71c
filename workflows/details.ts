/** Markdown shown as "current details" in the Temporal Web UI (deterministic, no I/O). */
import type { LifecycleStatus } from '../src/definitions';
import type { LifecycleSummary, RecipientState } from '../src/lifecycle';

const HEADLINE_MAX = 300;

/** Why a recipient is where it is, in a few words (bounce type and diagnostic, failure, suppression). */
function why(r: RecipientState, suppressed: boolean): string {
  const parts = [
    r.bounceType ? `${r.bounceType}/${r.bounceSubType ?? ''}` : '',
    r.diagnosticCode ? r.diagnosticCode.slice(0, 80) : '',
    r.complaintFeedbackType ? `feedback: ${r.complaintFeedbackType}` : '',
    r.failureReason ? r.failureReason.slice(0, 80) : '',
    suppressed ? 'suppressed' : '',
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** Addresses whose suppression follow-up finished and did not fail. */
export function suppressedOk(done: ReadonlySet<string>, followUps: readonly { kind: string; detail: string }[]): Set<string> {
  const failed = new Set(followUps.filter((f) => f.kind === 'suppression-failed').map((f) => f.detail.split(' ')[0]));
  return new Set([...done].filter((e) => !failed.has(e)));
}

/**
 * One line a person reads first: the first key of the lifecycle's status and result, so the
 * Web UI's workflow page (Result panel) says what happened without opening a tab, e.g.
 * `Email bounced (completed): bob@x.com bounced (Permanent/General, smtp; 550 5.1.1 user unknown, suppressed)`.
 */
export function headline(s: LifecycleSummary, kind: LifecycleStatus['kind'], phase: LifecycleStatus['phase'], suppressed: ReadonlySet<string> = new Set()): string {
  const shown = s.recipients.slice(0, 3).map((r) => `${r.email} ${r.status}${why(r, suppressed.has(r.email))}`);
  const more = s.recipients.length > 3 ? `; and ${s.recipients.length - 3} more` : '';
  const error = s.sendError ? `; send error ${s.sendError.type}: ${s.sendError.message}` : '';
  const line = `${kind === 'orphan' ? 'Orphan events' : 'Email'} ${s.status} (${phase}): ${shown.join('; ') || 'no recipients yet'}${more}${error}`;
  return line.length > HEADLINE_MAX ? `${line.slice(0, HEADLINE_MAX - 1)}…` : line;
}

export function renderDetails(s: LifecycleStatus, extra: string[] = []): string {
  const lines = [
    `**${s.kind === 'orphan' ? 'Orphan events' : 'Email'}: ${s.status}** (phase: ${s.phase})`,
    '',
    ...s.recipients.slice(0, 50).map((r) => {
      const detail = [
        r.bounceType ? `${r.bounceType}/${r.bounceSubType ?? ''}` : '',
        r.diagnosticCode ? r.diagnosticCode.slice(0, 120) : '',
        r.failureReason ? r.failureReason.slice(0, 120) : '',
        r.autoReplies ? `auto-replies: ${r.autoReplies}` : '',
        r.opens ? `opens: ${r.opens}` : '',
        r.clicks ? `clicks: ${r.clicks}` : '',
        r.attempts > 1 ? `attempts: ${r.attempts}` : '',
        r.outcomeSource === 'insights' ? 'from SES insights' : '',
      ]
        .filter(Boolean)
        .join('; ');
      return `- ${r.email}: **${r.status}**${detail ? ` (${detail})` : ''}`;
    }),
    ...(s.recipients.length > 50 ? [`- … and ${s.recipients.length - 50} more`] : []),
    ...extra,
    '',
    `SES message ids: ${s.sesMessageIds.join(', ') || '—'}`,
  ];
  if (s.engagement && (s.engagement.opens || s.engagement.clicks)) lines.push('', `Engagement: ${s.engagement.opens} opens, ${s.engagement.clicks} clicks`);
  lines.push('', 'Latest events:', '', ...s.latestEvents.slice(-10).map((e) => `- ${e.timestamp} ${e.type} ${e.recipients.join(', ')}${e.source === 'insights' ? ' (from insights)' : ''}`));
  if (s.followUps.length) lines.push('', 'Follow-ups:', '', ...s.followUps.slice(-10).map((f) => `- ${f.at} ${f.kind}: ${f.detail}`));
  if (s.sendError) lines.push('', `Send error: ${s.sendError.type}: ${s.sendError.message}`);
  return lines.join('\n');
}
