// Which URLs a webhook may target. By default (WEBHOOK_ALLOW_PRIVATE=false) only public
// addresses: anyone with an API key could otherwise make the server call into its own network
// (databases, admin ports, cloud metadata at 169.254.169.254) and read the answer back from the
// delivery log. The rule is checked twice: on the URL when an endpoint is saved (a literal
// address or `localhost`), and on every address DNS gives at delivery time, where the request
// connects to exactly the address that was checked (no second lookup to rebind).
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this" network
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["64:ff9b::", 96], // NAT64: may reach any IPv4 address
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, "ipv6");
}

/** Loopback, private, link-local and other non-public addresses (IPv4-mapped IPv6 included). */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return NOT_PUBLIC.check(address, family === 4 ? "ipv4" : "ipv6");
}

const bareHost = (hostname: string) => hostname.replace(/^\[|\]$/g, "");

/** null when the URL may be saved; else why not (an API message naming the problem). */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not an absolute URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    return `must be http or https (got ${url.protocol.slice(0, -1)})`;
  if (url.username || url.password) return "must not contain credentials (user:password@)";
  if (raw.length > 2048) return "must be at most 2048 characters";
  if (allowPrivate) return null;
  const host = bareHost(url.hostname).toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost") || (isIP(host) !== 0 && isNonPublicAddress(host))) {
    return `targets a loopback or private address (${host}), which this server refuses (WEBHOOK_ALLOW_PRIVATE=false)`;
  }
  return null;
}

/** The error a delivery records when DNS gives only addresses the policy refuses. */
export class BlockedAddressError extends Error {
  readonly code = "EWEBHOOKBLOCKED";
}

/**
 * A `lookup` for http.request: resolves, refuses if any address is not public, and hands the
 * socket the checked address.
 */
export function policyLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const blocked = allowPrivate ? undefined : addresses.find((a) => isNonPublicAddress(a.address));
      if (blocked) {
        return callback(
          new BlockedAddressError(`${hostname} resolves to ${blocked.address}, a non-public address`),
          "",
          0,
        );
      }
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
