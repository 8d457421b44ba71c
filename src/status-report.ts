/**
 * What the CLI prints about one lifecycle: per recipient its status and the reason for it (the
 * SES error, the bounce with its diagnostic code, the Rendering Failure message, the suppression
 * list), then the follow-ups (failures marked), engagement and events. Pure: data in, text out.
 */
import type { FollowUp, LifecycleStatus } from './definitions';
import { hasOutcome, isTerminal, type RecipientState } from './lifecycle';

/** Where a suppressed recipient's address is on the account suppression list, when looked up. */
export interface SuppressionSource {
  reason: string;
  since?: string;
}

/** A plain-text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** One line: why the recipient has its status. */
export function recipientReason(r: RecipientState, s: Pick<LifecycleStatus, 'sendError'>, suppression?: SuppressionSource): string {
  const parts: string[] = [];
  switch (r.status) {
    case 'failed':
      if (r.failureReason !== undefined) parts.push(`Rendering Failure: ${r.failureReason}`);
      else if (s.sendError) parts.push(`SES refused the send: ${s.sendError.type}: ${s.sendError.message}`);
      else parts.push('SES refused the send');
      break;
    case 'rejected':
      parts.push('SES rejected the message (Reject event: SES found a virus or refused the content); it was not sent');
      break;
    case 'bounced': {
      const kind = r.bounceKind === 'soft' ? 'soft bounce' : 'hard bounce';
      const type = r.bounceType ? `${r.bounceType}/${r.bounceSubType ?? ''}` : 'bounce';
      parts.push(`${kind} ${type}${r.diagnosticCode ? `: ${r.diagnosticCode}` : ' (no diagnostic code)'}`);
      break;
    }
    case 'complained':
      parts.push(`complaint${r.complaintFeedbackType ? ` (feedback type ${r.complaintFeedbackType})` : ''}`);
      break;
    case 'suppressed':
      parts.push(
        `skipped before sending: on the account suppression list${suppression ? ` (reason ${suppression.reason}${suppression.since ? `, since ${suppression.since}` : ''})` : ''}`,
      );
      break;
    case 'unconfirmed':
      parts.push('no outcome from SES by the delivery deadline');
      break;
    case 'delayed':
      parts.push('delivery delayed; SES keeps trying');
      break;
    case 'sent':
      parts.push('accepted by SES; waiting for delivery news');
      break;
    case 'pending':
      parts.push('not sent yet');
      break;
    case 'delivered':
      parts.push(r.deliveredAt ? `delivered ${r.deliveredAt}` : 'delivered');
      break;
  }
  if (r.outcomeSource === 'insights') parts.push('from SES message insights (the SNS event never arrived)');
  if (r.autoReplies > 0) parts.push(`auto-replies ${r.autoReplies}`);
  if (r.opens > 0) parts.push(`opens ${r.opens}`);
  if (r.clicks > 0) parts.push(`clicks ${r.clicks}`);
  if (r.attempts > 1) parts.push(`attempts ${r.attempts}`);
  return parts.join('; ');
}

/** Follow-ups that report something that did not work. */
export function isFailedFollowUp(f: FollowUp): boolean {
  return f.kind === 'suppression-failed' || / not delivered: | could not be forwarded: |gave up after/.test(f.detail) || (f.kind === 'repair' && / insights unavailable: .*(AccessDenied|Unavailable|Throttled|Error)/.test(f.detail));
}

/**
 * The `status` text: a header, the per-recipient table with reasons, the follow-ups, and the
 * engagement and event counts.
 */
export function statusReport(s: LifecycleStatus, opts: { suppression?: ReadonlyMap<string, SuppressionSource>; foundBy?: string } = {}): string {
  const out: string[] = [`${s.lifecycleId}  ${s.status}  (${s.phase})`];
  if (opts.foundBy !== undefined) out.push(`  found by SES message id ${opts.foundBy}`);
  out.push(`  SES message ids: ${s.sesMessageIds.length ? s.sesMessageIds.join(', ') : '—'}`);
  if (s.sendError) out.push(`  send error: ${s.sendError.type}: ${s.sendError.message}`);
  out.push('');
  out.push(table(['recipient', 'status', 'reason'], s.recipients.map((r) => [r.email, r.status, recipientReason(r, s, opts.suppression?.get(r.email))])));
  if (s.recipientsTruncated) out.push(`(${s.recipientsTruncated} more recipients not listed)`);
  out.push('');
  if (s.followUps.length === 0) out.push('follow-ups: none');
  else {
    out.push('follow-ups:');
    for (const f of s.followUps) out.push(`  ${f.at}  ${f.kind}${isFailedFollowUp(f) ? ' FAILED' : ''}: ${f.detail}`);
  }
  const engagement = s.engagement ?? { opens: 0, clicks: 0 };
  out.push(`engagement: opens ${engagement.opens}, clicks ${engagement.clicks}`);
  const counts = Object.entries(s.eventCounts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([t, n]) => `${t} ${n}`);
  out.push(`events: ${s.eventsRecorded} recorded${counts.length ? ` (${counts.join(', ')})` : ''}${s.repairedEvents ? `; ${s.repairedEvents} from SES message insights (source insights)` : ''}`);
  if (s.foreignEvents) out.push(`foreign events: ${s.foreignEvents} (named this lifecycle but belong to an SES message it never sent; forwarded to that message's orphan)`);
  return out.join('\n');
}

/**
 * True once the lifecycle has an outcome for `send --wait`: every recipient has one (delivered,
 * bounced, complained, unconfirmed) or a terminal status (suppressed, rejected, failed), and no
 * send or soft-bounce resend is still to come. A closed lifecycle always has its outcome.
 */
export function hasLifecycleOutcome(s: LifecycleStatus): boolean {
  if (s.phase === 'completed' || s.phase === 'cancelled') return true;
  if (s.phase === 'sending' || s.phase === 'resend-backoff') return false;
  return s.recipients.length > 0 && s.recipients.every((r) => hasOutcome(r) || isTerminal(r.status));
}
