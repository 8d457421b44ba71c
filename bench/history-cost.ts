/**
 * History events and Temporal Cloud billable actions of one workflow, counted from its history
 * (used by `npm run bench` and `npm run bench:cost`).
 */
import type { Client } from '@temporalio/client';
import type { CostSample } from './types';

export const COST_RULE =
  'Temporal Cloud actions counted from each history: Workflow started (1; also Continue-As-New, child start, Signal-With-Start), ' +
  'each Activity started or retried (ActivityTaskScheduled + retries from ActivityTaskStarted.attempt - 1), each Timer started, ' +
  'each Signal (WorkflowExecutionSignaled; also SignalExternalWorkflowExecutionInitiated), each UpsertSearchAttributes command ' +
  '(search attributes given at start are free), each MarkerRecorded (local activity / side effect), each accepted Update. ' +
  'Not in history and not counted: Queries (+1 action each: every status() call or UI stack view), heartbeats (none here). ' +
  'Workflow completion, workflow tasks and activity completions are not actions.';

/** Event type name from the attributes field that is set (`workflowExecutionStartedEventAttributes` → `WorkflowExecutionStarted`). */
export function eventTypeName(ev: object): string {
  for (const [k, v] of Object.entries(ev)) {
    if (k.endsWith('EventAttributes') && v !== null && v !== undefined) {
      const base = k.slice(0, -'EventAttributes'.length);
      return base.charAt(0).toUpperCase() + base.slice(1);
    }
  }
  return 'Unknown';
}

export async function historyCost(client: Client, workflowId: string): Promise<CostSample> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const eventTypes: Record<string, number> = {};
  const actionBreakdown: Record<string, number> = {};
  const add = (k: string, n = 1) => (actionBreakdown[k] = (actionBreakdown[k] ?? 0) + n);
  for (const ev of events) {
    const t = eventTypeName(ev);
    eventTypes[t] = (eventTypes[t] ?? 0) + 1;
    switch (t) {
      case 'WorkflowExecutionStarted':
        add('workflow started');
        break;
      case 'WorkflowExecutionContinuedAsNew':
        add('continue-as-new (new run started)');
        break;
      case 'StartChildWorkflowExecutionInitiated':
        add('child workflow started');
        break;
      case 'ActivityTaskScheduled':
        add('activity');
        break;
      case 'ActivityTaskStarted': {
        const attempt = Number((ev as { activityTaskStartedEventAttributes?: { attempt?: number } }).activityTaskStartedEventAttributes?.attempt ?? 1);
        if (attempt > 1) add('activity retry', attempt - 1);
        break;
      }
      case 'TimerStarted':
        add('timer');
        break;
      case 'WorkflowExecutionSignaled':
        add('signal');
        break;
      case 'SignalExternalWorkflowExecutionInitiated':
        add('signal (sent by workflow)');
        break;
      case 'UpsertWorkflowSearchAttributes':
        add('search attribute upsert');
        break;
      case 'MarkerRecorded':
        add('marker (local activity / side effect)');
        break;
      case 'WorkflowExecutionUpdateAccepted':
        add('update');
        break;
      default:
        break;
    }
  }
  const actions = Object.values(actionBreakdown).reduce((a, b) => a + b, 0);
  return { lifecycleId: workflowId, historyEvents: events.length, actions, actionBreakdown, eventTypes };
}

