package vendors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrDestinationNotAllowed is the class of a request the destination rules
// refused before any connection was made: a host a namespaced provider may
// not name, or an address no provider may reach.
var ErrDestinationNotAllowed = errors.New("destination not allowed")

// Destinations are the rules every connection to a vendor passes (API.md,
// "Where a provider may connect"): the host rule, applied to the URL of
// every request a namespaced provider makes (redirects and next pages
// included), and the address rule, applied at dial time to every address
// a host resolves to, for either kind of provider. The zero value is the
// strict default: the registered vendors' SaaS hosts, no private network.
type Destinations struct {
	// NamespacedHosts are the hosts a CredentialProvider may name
	// (--namespaced-provider-hosts); nil: the registered vendors' SaaS
	// hosts (Registry fills them in).
	NamespacedHosts HostPatterns
	// AllowedNetworks are the private networks vendors may be reached in
	// (--allowed-private-networks).
	AllowedNetworks []netip.Prefix
	// Refused are addresses never dialled whatever the networks allow,
	// with their port: the Kubernetes API server's.
	Refused []netip.AddrPort
	// Proxy, when set, carries every vendor connection (--vendor-proxy):
	// its own address is exempt from the address rule; HTTPS_PROXY and
	// friends are ignored.
	Proxy *url.URL
	// Resolver resolves host names; net.DefaultResolver when nil.
	Resolver Resolver
	// Dial opens a connection to an address that passed the rules; a
	// net.Dialer's when nil (tests replace it).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Resolver resolves a host name to its addresses (net.Resolver does).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// alwaysRefused are cloud metadata addresses: refused whatever
// --allowed-private-networks says (AWS, GCP, Azure and OpenStack use
// 169.254.169.254; AWS ECS task metadata 169.254.170.2; AWS IMDS over
// IPv6 fd00:ec2::254; Alibaba 100.100.100.200).
var alwaysRefused = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

// nonPublic are ranges that are not the public internet and that
// netip.Addr's predicates do not name: CGNAT (RFC 6598), "this network"
// (RFC 791), IETF protocol assignments, benchmarking (RFC 2544), the
// documentation ranges, the reserved class E with the broadcast address;
// and the IPv6 forms that carry an IPv4 address a host would reach some
// other way: IPv4-compatible (deprecated), local-use NAT64 (RFC 8215),
// 6to4 and Teredo.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses are
// judged by the IPv4 address they embed.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// CheckAddress says whether a connection to ip:port is allowed: nil, or
// why not (in words that name no address).
func (d *Destinations) CheckAddress(ip netip.Addr, port uint16) error {
	ip = ip.Unmap().WithZone("")
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, a := range alwaysRefused {
		if ip == a {
			return errors.New("a cloud metadata address")
		}
	}
	for _, ap := range d.Refused {
		if ap.Addr().Unmap() == ip && ap.Port() == port {
			return errors.New("the Kubernetes API server")
		}
	}
	if public(ip) {
		return nil
	}
	for _, n := range d.AllowedNetworks {
		if n.Contains(ip) {
			return nil
		}
	}
	return errors.New("a private, loopback or link-local address outside --allowed-private-networks")
}

// public reports whether ip is a global unicast address outside the
// private and special-purpose ranges.
func public(ip netip.Addr) bool {
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// DestinationError is a connection the rules refused. It names the host,
// never an address.
type DestinationError struct {
	Host string
	// Why is what the rule found ("a cloud metadata address", ...).
	Why string
}

func (e *DestinationError) Error() string {
	return fmt.Sprintf("%s: %s", ErrDestinationNotAllowed, e.detail())
}

// detail is the error without its class.
func (e *DestinationError) detail() string { return fmt.Sprintf("host %s is %s", e.Host, e.Why) }

// Unwrap makes errors.Is(err, ErrDestinationNotAllowed) work.
func (e *DestinationError) Unwrap() error { return ErrDestinationNotAllowed }

// DialContext resolves address's host, refuses the addresses the rules
// refuse, and dials the others in turn. The address dialled is the one
// checked: a name that resolves elsewhere the next time is checked again.
func (d *Destinations) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if d.Proxy != nil && strings.EqualFold(address, proxyAddress(d.Proxy)) {
		return d.dial(ctx, network, address)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port of %s: %w", host, err)
	}
	ips, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var why error
	var allowed []netip.Addr
	for _, ip := range ips {
		if err := d.CheckAddress(ip, uint16(port)); err != nil {
			why = err
			continue
		}
		allowed = append(allowed, ip)
	}
	if len(allowed) == 0 {
		if why == nil {
			why = errors.New("resolved to no address")
		}
		return nil, &DestinationError{Host: host, Why: why.Error()}
	}
	var lastErr error
	for _, ip := range allowed {
		conn, err := d.dial(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (d *Destinations) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	return r.LookupNetIP(ctx, "ip", host)
}

func (d *Destinations) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if d.Dial != nil {
		return d.Dial(ctx, network, address)
	}
	var dialer net.Dialer
	return dialer.DialContext(ctx, network, address)
}

// proxyAddress is the host:port a proxy URL is dialled at.
func proxyAddress(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// proxy is the transport's Proxy: the explicit one, never the
// environment's.
func (d *Destinations) proxy() func(*http.Request) (*url.URL, error) {
	if d.Proxy == nil {
		return nil
	}
	return http.ProxyURL(d.Proxy)
}

// HostPatterns are the hosts a namespaced provider may name: "host",
// "*.suffix" (any name under suffix, not suffix itself), each with an
// optional ":port" (without one, any port), or "*" (any host).
type HostPatterns []hostPattern

type hostPattern struct {
	host string // lower case; "*.suffix" keeps its "*."; "*" is any
	port string // "" matches any port
}

// ParseHostPatterns reads a comma-separated list of host patterns.
func ParseHostPatterns(list string) (HostPatterns, error) {
	var out HostPatterns
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		p, err := parseHostPattern(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseHostPattern(raw string) (hostPattern, error) {
	host, port := strings.ToLower(raw), ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, port = h, p
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return hostPattern{}, fmt.Errorf("host pattern %q: port %q is not a port number", raw, p)
		}
	}
	if host == "*" {
		return hostPattern{host: host, port: port}, nil
	}
	// The wildcard's "*." comes off before the trailing dot: "*." is no
	// pattern, not "*".
	name := strings.TrimSuffix(strings.TrimPrefix(host, "*."), ".")
	if name == "" || strings.ContainsAny(name, "*/@?#[] ") {
		return hostPattern{}, fmt.Errorf("host pattern %q: want host, *.suffix or *, with an optional :port", raw)
	}
	if strings.HasPrefix(host, "*.") {
		name = "*." + name
	}
	return hostPattern{host: name, port: port}, nil
}

// Allows reports whether u's host and port match one of the patterns. An
// IP literal is matched as text.
func (hp HostPatterns) Allows(u *url.URL) bool {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	for _, p := range hp {
		if p.port != "" && p.port != port {
			continue
		}
		switch {
		case p.host == "*", p.host == host:
			return true
		case strings.HasPrefix(p.host, "*.") && strings.HasSuffix(host, p.host[1:]) && len(host) > len(p.host)-1:
			return true
		}
	}
	return false
}

// String writes the patterns as the flag takes them.
func (hp HostPatterns) String() string {
	parts := make([]string, len(hp))
	for i, p := range hp {
		parts[i] = p.host
		if p.port != "" {
			parts[i] = net.JoinHostPort(p.host, p.port)
		}
	}
	return strings.Join(parts, ",")
}

// ParseNetworks reads a comma-separated list of CIDRs (a bare address is
// its own /32 or /128).
func ParseNetworks(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "/") {
			ip, err := netip.ParseAddr(raw)
			if err != nil {
				return nil, fmt.Errorf("network %q: %w", raw, err)
			}
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", raw, err)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("network %q: an IPv4-mapped network needs a prefix of /96 or longer", raw)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// hostGuard applies the host rule to every request a namespaced provider
// sends, redirects and next pages included, before it reaches the
// transport: a refused host is never resolved nor dialled.
type hostGuard struct {
	next  http.RoundTripper
	hosts HostPatterns
}

func (g hostGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if !g.hosts.Allows(req.URL) {
		return nil, hostRefused(req.URL)
	}
	return g.next.RoundTrip(req)
}

func hostRefused(u *url.URL) *DestinationError {
	return &DestinationError{Host: u.Host, Why: "not in --namespaced-provider-hosts"}
}

// ParseDestinations builds the destination rules from the manager's flags:
// --namespaced-provider-hosts (empty: the vendors' SaaS hosts),
// --allowed-private-networks and --vendor-proxy.
func ParseDestinations(hosts, networks, proxy string) (*Destinations, error) {
	d := &Destinations{}
	var err error
	if strings.TrimSpace(hosts) != "" {
		if d.NamespacedHosts, err = ParseHostPatterns(hosts); err != nil {
			return nil, fmt.Errorf("--namespaced-provider-hosts: %w", err)
		}
	}
	if d.AllowedNetworks, err = ParseNetworks(networks); err != nil {
		return nil, fmt.Errorf("--allowed-private-networks: %w", err)
	}
	if proxy = strings.TrimSpace(proxy); proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--vendor-proxy %q: want an http:// or https:// URL", proxy)
		}
		d.Proxy = u
	}
	return d, nil
}

// RefuseServer adds the addresses of the server at rawURL (host:port, or a
// URL whose default port is 443) to the addresses refused always: the
// Kubernetes API server of the manager's kubeconfig, and in-cluster its
// Service's ClusterIP and endpoints.
func (d *Destinations) RefuseServer(ctx context.Context, rawURL string) error {
	if !strings.Contains(rawURL, "://") {
		rawURL = "https://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("API server address %q does not parse", rawURL)
	}
	port, err := strconv.ParseUint(cmp.Or(u.Port(), "443"), 10, 16)
	if err != nil {
		return fmt.Errorf("API server address %q: port: %w", rawURL, err)
	}
	ips, err := d.resolve(ctx, u.Hostname())
	if err != nil {
		return fmt.Errorf("resolve the API server's host %s: %w", u.Hostname(), err)
	}
	for _, ip := range ips {
		d.Refused = append(d.Refused, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return nil
}
