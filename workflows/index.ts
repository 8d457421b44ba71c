/** Workflow entry point for the worker bundle. */
export { messageLifecycle } from './message-lifecycle';
export { orphanLifecycle } from './orphan-lifecycle';
