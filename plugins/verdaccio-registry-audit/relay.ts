/**
 * The audit routes npm calls (`POST /-/npm/v1/security/advisories/bulk` — npm 11 —, and the
 * older `/-/npm/v1/security/audits/quick` and `/audits`): the parsed JSON body is sent to the
 * upstream's same path and its answer relayed — status, JSON body, content type; the
 * upstream's compression is undone by fetch and this registry's own compression applies, so
 * no stale `content-encoding`/`content-length` is passed on. Every failure is a JSON
 * `{"error"}` npm prints (it prints an audit error's body): 501 without an upstream, 502 when
 * the upstream is unreachable or does not answer JSON, 504 on its timeout, 508 on a relay loop.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { AuditUpstream } from './upstream';

export const AUDIT_PATHS = ['/-/npm/v1/security/advisories/bulk', '/-/npm/v1/security/audits/quick', '/-/npm/v1/security/audits'] as const;

/** Counts relays: a registry that (indirectly) names itself as upstream stops here instead of recursing. */
export const HOPS_HEADER = 'x-registry-audit-hops';
export const UPSTREAM_HEADER = 'x-registry-audit-upstream';
export const MAX_HOPS = 3;

function isJsonType(value: string | null): boolean {
  if (value === null) return false;
  const type = value.split(';')[0].trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}

function hostOf(req: Request): string {
  const host = req.headers.host;
  return typeof host === 'string' && /^[A-Za-z0-9.:[\]-]{1,255}$/.test(host) ? host : 'this registry';
}

export function createAuditRelay(deps: { upstream: AuditUpstream | null; warn(message: string): void; offline?: () => boolean }): RequestHandler {
  const { upstream, warn } = deps;
  return function auditRelay(req: Request, res: Response): void {
    const fail = (status: number, error: string): void => {
      res.status(status).json({ error });
    };
    // OFFLINE (featureFlags bit 3): never contact the upstream, audits included (docs/upstream.md)
    if (upstream !== null && deps.offline?.() === true) {
      fail(503, `npm audit needs the upstream registry, and ${hostOf(req)} is OFFLINE (clear the flag: registry config toggle OFFLINE)`);
      return;
    }
    if (upstream === null) {
      fail(
        501,
        `npm audit needs an upstream registry: ${hostOf(req)} has no \`uplinks\` in its config.yaml to send the advisory request to ` +
          '(add one, e.g. uplinks: { upstream: { url: <registry URL> } })',
      );
      return;
    }
    const hops = Number.parseInt(String(req.headers[HOPS_HEADER] ?? '0'), 10);
    if (!Number.isInteger(hops) || hops < 0 || hops >= MAX_HOPS) {
      fail(508, `audit: relayed ${MAX_HOPS} times already — the upstream chain loops back (check uplinks in config.yaml)`);
      return;
    }
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      fail(400, 'audit: the request body must be a JSON object (package name → versions)');
      return;
    }
    const target = `${upstream.url}${req.path}`;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'accept-encoding': 'gzip, deflate, br',
      [HOPS_HEADER]: String(hops + 1),
    };
    const userAgent = req.headers['user-agent'];
    if (typeof userAgent === 'string') headers['user-agent'] = userAgent;
    if (upstream.authorization !== undefined) headers.authorization = upstream.authorization;

    const relay = async (): Promise<void> => {
      let response: globalThis.Response;
      try {
        response = await fetch(target, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(upstream.timeoutMs), redirect: 'follow' });
      } catch (error) {
        const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const why = timedOut ? `no answer within ${upstream.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error)));
        warn(`audit: upstream ${upstream.name} (${upstream.url}) failed: ${why}`);
        fail(timedOut ? 504 : 502, `audit: could not reach the upstream registry ${upstream.name} (${upstream.url}): ${why}`);
        return;
      }
      // fetch has undone the upstream's content-encoding: the bytes here are the JSON itself
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = isJsonType(response.headers.get('content-type')) || text.trim() !== '' ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      if (parsed === undefined || typeof parsed !== 'object' || parsed === null) {
        warn(`audit: upstream ${upstream.name} answered ${response.status} ${response.headers.get('content-type') ?? ''} (${text.length} bytes), not JSON`);
        fail(502, `audit: the upstream registry ${upstream.name} (${upstream.url}) answered ${response.status} without an audit report (it may not support npm audit)`);
        return;
      }
      res.status(response.status);
      res.setHeader(UPSTREAM_HEADER, upstream.name);
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.send(text);
    };
    relay().catch((error: unknown) => {
      warn(`audit: relay failed: ${error instanceof Error ? error.message : String(error)}`);
      if (!res.headersSent) fail(502, `audit: the answer of the upstream registry ${upstream.name} could not be read`);
    });
  };
}
