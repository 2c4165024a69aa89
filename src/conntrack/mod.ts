/**
 * Connection tracking: flows hashed by original and reply tuple, Linux's
 * TCP tracker with sequence-window checks, per-protocol timeouts on a timer wheel, a
 * bounded table with early drop (SNAT port choice is nat's: see nat/port_alloc.ts).
 */
export * from "./constants.ts";
export {
  ConnTable,
  type ConnTableOptions,
  type ConnTableStats,
  type ExpireCallback,
  FLOW_RECORD_BYTES,
  type FlowInfo,
  RESTORE_SKIPPED,
  type TupleInfo,
} from "./table.ts";
export { FlowSpec } from "./flow_spec.ts";
export {
  DEFAULT_TIMEOUTS,
  LOCAL_FLOW_TIMEOUT_S,
  resolveTimeouts,
  type Timeouts,
} from "./timeouts.ts";
export { TcpSegment } from "./segment.ts";
export { isTcpOpening } from "./tcp_tracker.ts";
export { TimerWheel } from "./timer_wheel.ts";
export { tupleHash } from "./hash.ts";
