/** Security headers on every response; `no-store` on API and metrics answers. */
import type { MiddlewareHandler } from "hono";

/** The default Content-Security-Policy: nothing from elsewhere, no framing. */
export const DEFAULT_CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; " +
  "form-action 'self'";

/**
 * HSTS: a year, no `includeSubDomains` (the appliance's name may be a parent of other hosts).
 * Browsers ignore it for IP-literal hosts (RFC 6797 §8.1.1), where the pinned or trusted
 * certificate is what protects the session.
 */
export const HSTS = "max-age=31536000";

/**
 * Adds CSP (unless a route set its own), HSTS, X-Frame-Options, nosniff, Referrer-Policy,
 * Cache-Control.
 */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const h = c.res.headers;
    try {
      if (!h.has("Content-Security-Policy")) h.set("Content-Security-Policy", DEFAULT_CSP);
      h.set("Strict-Transport-Security", HSTS);
      h.set("X-Frame-Options", "DENY");
      h.set("X-Content-Type-Options", "nosniff");
      h.set("Referrer-Policy", "no-referrer");
      const p = c.req.path;
      if (p.startsWith("/api/v1/") || p === "/api/v1" || p === "/metrics") {
        h.set("Cache-Control", "no-store");
      }
    } catch {
      // Headers of a response built elsewhere may be immutable; they are left as they are.
    }
  };
}
