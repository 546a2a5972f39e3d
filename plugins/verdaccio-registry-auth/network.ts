/**
 * Client IPs and CIDR allow-lists for generated tokens, on Node's own `net.BlockList`.
 */
import { BlockList, isIP } from 'node:net';
import { AuthError } from './errors';

/** `::ffff:10.0.0.1` (IPv4 on a dual-stack socket) → `10.0.0.1`; anything else unchanged. */
export function normalizeIp(address: string | undefined): string {
  if (!address) return '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1] : address;
}

/** Validates and canonicalises one CIDR entry (`10.0.0.0/8`, a bare address = /32 or /128). */
export function parseCidr(entry: unknown): { address: string; prefix: number; family: 'ipv4' | 'ipv6'; text: string } {
  if (typeof entry !== 'string' || entry.trim() === '') throw new AuthError('ERR_TOKEN_OPTIONS', 'a CIDR entry must be a non-empty string');
  const [address, prefixText, extra] = entry.trim().split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) throw new AuthError('ERR_TOKEN_OPTIONS', `not a CIDR range: ${JSON.stringify(entry)}`);
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new AuthError('ERR_TOKEN_OPTIONS', `not a CIDR range: ${JSON.stringify(entry)} (prefix must be 0..${max})`);
  }
  return { address, prefix, family, text: `${address}/${prefix}` };
}

/** A compiled allow-list; `allows(ip)` is what every request with a CIDR-bound token runs. */
export class CidrAllowList {
  readonly ranges: string[];
  private readonly list = new BlockList();

  constructor(entries: readonly string[]) {
    this.ranges = entries.map((entry) => {
      const range = parseCidr(entry);
      this.list.addSubnet(range.address, range.prefix, range.family);
      return range.text;
    });
  }

  allows(ip: string): boolean {
    const address = normalizeIp(ip);
    const version = isIP(address);
    if (version === 0) return false;
    return this.list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  }
}
