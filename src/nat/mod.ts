/**
 * NAT: port-forwarding and open-ports rules, their validation, the compiled
 * rule index the data path looks ports up in, source-NAT port choice, and
 * in-place header rewrite with incremental checksums.
 */
export * from "./rule.ts";
export * from "./rule_index.ts";
export * from "./rule_validate.ts";
export * from "./port_alloc.ts";
export * from "./rewrite.ts";
export * from "./ttl.ts";
