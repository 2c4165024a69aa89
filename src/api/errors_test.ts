import assert from "node:assert/strict";
import { StoreUnavailableError } from "../store/errors.ts";
import { toApiError } from "./errors.ts";

Deno.test("errors: a degraded store's refusal is a 503 with Retry-After", () => {
  const e = toApiError(new StoreUnavailableError("Cannot write: no etcd member answers"))!;
  assert.equal(e.status, 503);
  assert.equal(e.code, "store_unavailable");
  assert.equal(e.headers["Retry-After"], "5");
});
