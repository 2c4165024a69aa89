/**
 * V8 flags the appliance runs with (`deno run --v8-flags=...`; the data-plane
 * Worker shares its process's flags). The TCP fast path (parse, window check,
 * translate) is a chain of functions each near V8's default inlining limits
 * (460 bytecodes per function, 920 in all): at the defaults `#translate`,
 * `step` and `#inWindow` stay real calls. Raising both limits lets TurboFan
 * inline the chain; measured in the in-memory pipeline bench (A/B, same
 * load): TCP fast 362-392 -> 269-342 ns/packet, UDP fast 280-303 -> 191-296.
 * deno.json's `start` task, config/knockgate.service, the lab and the
 * pipeline bench all pass these; `v8_flags_test.ts` keeps them in step.
 */
export const DATAPLANE_V8_FLAGS =
  "--max-inlined-bytecode-size=3000,--max-inlined-bytecode-size-cumulative=6000";
