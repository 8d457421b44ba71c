/** Markdown shown as "current details" in the Temporal Web UI (deterministic, no I/O). */
import type { LifecycleStatus } from '../src/definitions';

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
