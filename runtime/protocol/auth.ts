import { BlockList, isIPv4, isIPv6 } from "node:net";

/**
 * auth.ip.<volume>.allow / .reject, as GlusterFS's auth.addr decides: entries are exact addresses,
 * globs (`10.0.0.*`, `*`, `?`) or CIDR ranges (`10.0.0.0/24`, `fd00::/8`); reject wins; a volume
 * with no allow rule is refused to everybody.
 */
export interface AuthRules {
  allow: string[];
  reject: string[];
}

export interface AuthDecision {
  ok: boolean;
  /** Why (for both sides' logs): the rule that decided. */
  reason: string;
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.1`, how a dual-stack socket reports IPv4 peers) becomes plain IPv4. */
export function normalizeAddress(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr.toLowerCase();
}

function asList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
  if (typeof v === "string") return v.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** The rules for one volume from a protocol/server's options (keys `auth.ip.<volume>.allow|reject`). */
export function authRulesFor(options: Record<string, unknown>, volume: string): AuthRules {
  return {
    allow: asList(options[`auth.ip.${volume}.allow`]),
    reject: asList(options[`auth.ip.${volume}.reject`]),
  };
}

function globToRegExp(glob: string): RegExp {
  const src = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${src}$`, "i");
}

/** Whether one rule entry (address, glob or CIDR) covers the address. */
export function addressMatches(address: string, entry: string): boolean {
  const addr = normalizeAddress(address);
  const family = isIPv4(addr) ? "ipv4" : isIPv6(addr) ? "ipv6" : undefined;
  const slash = entry.indexOf("/");
  if (slash > 0) {
    const net = normalizeAddress(entry.slice(0, slash));
    const bits = Number(entry.slice(slash + 1));
    const netFamily = isIPv4(net) ? "ipv4" : isIPv6(net) ? "ipv6" : undefined;
    if (!family || netFamily !== family || !Number.isInteger(bits) || bits < 0 || bits > (family === "ipv4" ? 32 : 128)) {
      return false;
    }
    const list = new BlockList();
    list.addSubnet(net, bits, netFamily);
    return list.check(addr, family);
  }
  if (/[*?]/.test(entry)) return globToRegExp(entry).test(addr);
  const exact = normalizeAddress(entry);
  if (family === "ipv6" && isIPv6(exact)) {
    // Compare IPv6 by value, not spelling (`::1` vs `0:0::1`).
    const list = new BlockList();
    list.addAddress(exact, "ipv6");
    return list.check(addr, "ipv6");
  }
  return exact === addr;
}

export function authorize(address: string, rules: AuthRules): AuthDecision {
  const rejected = rules.reject.find((e) => addressMatches(address, e));
  if (rejected !== undefined) return { ok: false, reason: `address ${address} matches reject rule "${rejected}"` };
  if (rules.allow.length === 0) return { ok: false, reason: "no allow rule for this volume" };
  const allowed = rules.allow.find((e) => addressMatches(address, e));
  if (allowed !== undefined) return { ok: true, reason: `address ${address} matches allow rule "${allowed}"` };
  return { ok: false, reason: `address ${address} matches no allow rule (${rules.allow.join(",")})` };
}
