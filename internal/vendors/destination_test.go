package vendors_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

func mustHosts(t *testing.T, list string) vendors.HostPatterns {
	t.Helper()
	hp, err := vendors.ParseHostPatterns(list)
	if err != nil {
		t.Fatal(err)
	}
	return hp
}

func mustNetworks(t *testing.T, list string) []netip.Prefix {
	t.Helper()
	n, err := vendors.ParseNetworks(list)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestHostPatterns(t *testing.T) {
	cases := []struct {
		patterns string
		allowed  []string
		refused  []string
	}{
		{"acme.tines.com",
			[]string{"https://acme.tines.com", "https://acme.tines.com:8443/x", "https://ACME.Tines.COM", "https://acme.tines.com./"},
			[]string{"https://x.acme.tines.com", "https://tines.com", "https://acme.tines.com.evil.io", "https://evilacme.tines.com"}},
		// *.suffix: any name under suffix, never the bare suffix.
		{"*.tines.com",
			[]string{"https://acme.tines.com", "https://a.b.tines.com", "https://ACME.TINES.COM.", "https://acme.tines.com:444"},
			[]string{"https://tines.com", "https://tines.com.", "https://eviltines.com", "https://acme.tines.com.evil.io", "https://tines.com.evil.io"}},
		// A port: that port only; the scheme's default when the URL has none.
		{"api.x.example:8443",
			[]string{"https://api.x.example:8443"},
			[]string{"https://api.x.example", "https://api.x.example:443", "https://api.x.example:18443"}},
		{"*.x.example:443",
			[]string{"https://a.x.example", "https://a.x.example:443"},
			[]string{"https://a.x.example:8443", "https://x.example"}},
		// *: any host, IP literals included.
		{"*",
			[]string{"https://anything.example", "https://127.0.0.1:9", "https://[::1]"},
			nil},
		{"*:443",
			[]string{"https://anything.example", "https://10.0.0.1"},
			[]string{"https://anything.example:8443"}},
		// IP literals are matched as text: another spelling of the address
		// is another host.
		{"10.0.0.1,::1,[fd00::1]:8443",
			[]string{"https://10.0.0.1", "https://10.0.0.1:8443", "https://[::1]:9443", "https://[fd00::1]:8443"},
			[]string{"https://010.0.0.1", "https://10.0.0.01", "https://167772161", "https://[0:0:0:0:0:0:0:1]", "https://[::ffff:10.0.0.1]", "https://[fd00::1]"}},
		// Case and a trailing dot in the pattern.
		{" ACME.Tines.COM. , *.Elastic-Cloud.com ",
			[]string{"https://acme.tines.com", "https://api.elastic-cloud.com"},
			[]string{"https://elastic-cloud.com"}},
		// No pattern: nothing.
		{"", nil, []string{"https://acme.tines.com", "https://127.0.0.1"}},
	}
	for _, tc := range cases {
		hp := mustHosts(t, tc.patterns)
		for _, u := range tc.allowed {
			if !hp.Allows(mustURL(t, u)) {
				t.Errorf("patterns %q refuse %s; want allowed", tc.patterns, u)
			}
		}
		for _, u := range tc.refused {
			if hp.Allows(mustURL(t, u)) {
				t.Errorf("patterns %q allow %s; want refused", tc.patterns, u)
			}
		}
	}
}

func TestParseHostPatterns(t *testing.T) {
	hp := mustHosts(t, "A.example:8443, *.B.example.,::1,[fd00::1]:9,,*")
	if got, want := hp.String(), "a.example:8443,*.b.example,::1,[fd00::1]:9,*"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if again := mustHosts(t, hp.String()); again.String() != hp.String() {
		t.Errorf("String() does not parse back: %q", again)
	}
	if hp, err := vendors.ParseHostPatterns(" , "); err != nil || len(hp) != 0 {
		t.Errorf("ParseHostPatterns(\" , \") = %v, %v; want none", hp, err)
	}
	for _, bad := range []string{
		"*.", "*.*.example", "a*.example", "*example.com", "a.*.example", "**",
		"https://acme.tines.com", "acme.tines.com/api", "user@acme.tines.com", "acme.tines.com?x", "acme.tines.com#f",
		"[::1]", "acme tines.com", "acme.tines.com:", "acme.tines.com:0", "acme.tines.com:65536", "acme.tines.com:http",
		"good.example,bad/one",
	} {
		if hp, err := vendors.ParseHostPatterns(bad); err == nil {
			t.Errorf("ParseHostPatterns(%q) = %v; want an error", bad, hp)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	got, err := vendors.ParseNetworks(" 10.0.0.0/8, 192.168.1.5 ,172.16.5.9/12,::1/128,fd00::/8,::ffff:100.64.0.0/106,::ffff:10.1.2.3,,")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.5/32"),
		netip.MustParsePrefix("172.16.0.0/12"), // masked
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("100.64.0.0/10"), // IPv4-mapped: the IPv4 network
		netip.MustParsePrefix("10.1.2.3/32"),
	}
	if len(got) != len(want) {
		t.Fatalf("ParseNetworks = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("network %d = %v, want %v", i, got[i], want[i])
		}
	}
	if n, err := vendors.ParseNetworks(""); err != nil || len(n) != 0 {
		t.Errorf("ParseNetworks(\"\") = %v, %v; want none", n, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "10.0.0.0/", "nonsense", "10.0.0", "10.0.0.0/8,x", "fd00::/129", "10.0.0.0/-1",
		"::ffff:10.0.0.0/90"} { // an IPv4-mapped prefix shorter than /96 is no IPv4 network
		if n, err := vendors.ParseNetworks(bad); err == nil {
			t.Errorf("ParseNetworks(%q) = %v; want an error", bad, n)
		}
	}
}

func TestParseDestinations(t *testing.T) {
	d, err := vendors.ParseDestinations("", "", "")
	if err != nil || d.NamespacedHosts != nil || len(d.AllowedNetworks) != 0 || d.Proxy != nil {
		t.Errorf("ParseDestinations of nothing = %+v, %v; want the strict default", d, err)
	}
	d, err = vendors.ParseDestinations("*.tines.com", "10.0.0.0/8", "http://proxy.internal:3128")
	if err != nil || d.NamespacedHosts.String() != "*.tines.com" || len(d.AllowedNetworks) != 1 || d.Proxy.Host != "proxy.internal:3128" {
		t.Errorf("ParseDestinations = %+v, %v", d, err)
	}
	for _, bad := range [][3]string{
		{"http://x", "", ""}, {"", "10.0.0.0/33", ""},
		{"", "", "proxy.internal:3128"}, {"", "", "socks5://proxy.internal:1080"}, {"", "", "http://"},
	} {
		if d, err := vendors.ParseDestinations(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("ParseDestinations(%q) = %+v; want an error", bad, d)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	strict := &vendors.Destinations{}
	allowPrivate := &vendors.Destinations{AllowedNetworks: mustNetworks(t, "10.0.0.0/8,127.0.0.0/8,::1/128")}
	// Everything allowed, yet metadata addresses stay refused.
	allowAll := &vendors.Destinations{AllowedNetworks: mustNetworks(t, "0.0.0.0/0,::/0")}
	linkLocal := &vendors.Destinations{AllowedNetworks: mustNetworks(t, "169.254.0.0/16,fe80::/10,100.64.0.0/10,fc00::/7")}
	apiServer := &vendors.Destinations{
		AllowedNetworks: mustNetworks(t, "10.0.0.0/8"),
		Refused:         []netip.AddrPort{netip.MustParseAddrPort("10.96.0.1:443"), netip.MustParseAddrPort("[::ffff:10.0.0.5]:6443"), netip.MustParseAddrPort("35.1.2.3:6443")},
	}
	cases := []struct {
		d     *vendors.Destinations
		ip    string
		port  uint16
		allow bool
	}{
		// Public addresses.
		{strict, "8.8.8.8", 443, true},
		{strict, "1.1.1.1", 12443, true},
		{strict, "172.32.0.1", 443, true},
		{strict, "100.128.0.1", 443, true},
		{strict, "2606:4700:4700::1111", 443, true},
		{strict, "::ffff:8.8.8.8", 443, true},
		{strict, "64:ff9b::808:808", 443, true}, // NAT64 of 8.8.8.8
		// IPv6 forms carrying an IPv4 address, and documentation ranges.
		{strict, "::10.0.0.1", 443, false},
		{strict, "::8.8.8.8", 443, false},
		{strict, "64:ff9b:1::a00:1", 443, false},
		{strict, "2002:a00:1::1", 443, false},
		{strict, "2001:0:a00:1::1", 443, false},
		{strict, "2001:db8::1", 443, false},
		{strict, "192.0.2.1", 443, false},
		{strict, "203.0.113.9", 443, false},
		// Loopback.
		{strict, "127.0.0.1", 443, false},
		{strict, "127.1.2.3", 443, false},
		{strict, "::1", 443, false},
		// RFC 1918.
		{strict, "10.0.0.1", 443, false},
		{strict, "172.16.0.1", 443, false},
		{strict, "172.31.255.255", 443, false},
		{strict, "192.168.1.1", 443, false},
		// CGNAT 100.64.0.0/10.
		{strict, "100.64.0.1", 443, false},
		{strict, "100.127.255.254", 443, false},
		// ULA fc00::/7.
		{strict, "fc00::1", 443, false},
		{strict, "fd12:3456::1", 443, false},
		// Link-local.
		{strict, "169.254.1.1", 443, false},
		{strict, "fe80::1", 443, false},
		{strict, "fe80::1%eth0", 443, false},
		// Unspecified, "this network", broadcast, reserved, benchmarking.
		{strict, "0.0.0.0", 443, false},
		{strict, "::", 443, false},
		{strict, "0.1.2.3", 443, false},
		{strict, "255.255.255.255", 443, false},
		{strict, "240.0.0.1", 443, false},
		{strict, "198.18.0.1", 443, false},
		// Multicast.
		{strict, "224.0.0.1", 443, false},
		{strict, "239.255.255.250", 443, false},
		{strict, "ff02::1", 443, false},
		// IPv4-mapped and NAT64 forms are judged by the IPv4 address.
		{strict, "::ffff:127.0.0.1", 443, false},
		{strict, "::ffff:10.0.0.1", 443, false},
		{strict, "::ffff:169.254.1.1", 443, false},
		{strict, "64:ff9b::a00:1", 443, false},      // 10.0.0.1
		{strict, "64:ff9b::7f00:1", 443, false},     // 127.0.0.1
		{strict, "64:ff9b::a9fe:1", 443, false},     // 169.254.0.1
		{strict, "64:ff9b::6440:1", 443, false},     // 100.64.0.1
		{allowPrivate, "64:ff9b::a00:1", 443, true}, // inside 10.0.0.0/8
		// --allowed-private-networks opens what it names, nothing else.
		{allowPrivate, "10.1.2.3", 443, true},
		{allowPrivate, "::ffff:10.1.2.3", 443, true},
		{allowPrivate, "127.0.0.1", 8443, true},
		{allowPrivate, "::ffff:127.0.0.1", 8443, true},
		{allowPrivate, "::1", 8443, true},
		{allowPrivate, "192.168.1.1", 443, false},
		{allowPrivate, "172.16.0.1", 443, false},
		{allowPrivate, "169.254.169.254", 80, false},
		{linkLocal, "169.254.1.1", 443, true},
		{linkLocal, "fe80::1", 443, true},
		{linkLocal, "100.64.0.1", 443, true},
		{linkLocal, "fd00::1", 443, true},
		// Cloud metadata: refused always, whatever the networks allow.
		{linkLocal, "169.254.169.254", 80, false},
		{linkLocal, "169.254.170.2", 80, false},
		{linkLocal, "fd00:ec2::254", 80, false},
		{linkLocal, "100.100.100.200", 80, false},
		{allowAll, "169.254.169.254", 443, false},
		{allowAll, "::ffff:169.254.169.254", 443, false},
		{allowAll, "64:ff9b::a9fe:a9fe", 443, false},
		{allowAll, "fd00:ec2::254", 443, false},
		{allowAll, "169.254.169.253", 443, true},
		{allowAll, "127.0.0.1", 443, true},
		// The API server's address and port: refused even inside an
		// allowed network; another port, or another address, is not it.
		{apiServer, "10.96.0.1", 443, false},
		{apiServer, "::ffff:10.96.0.1", 443, false},
		{apiServer, "64:ff9b::a60:1", 443, false}, // NAT64 of 10.96.0.1
		{apiServer, "10.96.0.1", 8443, true},
		{apiServer, "10.96.0.2", 443, true},
		{apiServer, "10.0.0.5", 6443, false},
		{apiServer, "10.0.0.5", 443, true},
		{apiServer, "35.1.2.3", 6443, false}, // a public API server too
		{apiServer, "35.1.2.3", 443, true},
	}
	for _, tc := range cases {
		err := tc.d.CheckAddress(netip.MustParseAddr(tc.ip), tc.port)
		switch {
		case tc.allow && err != nil:
			t.Errorf("CheckAddress(%s, %d) = %v; want allowed", tc.ip, tc.port, err)
		case !tc.allow && err == nil:
			t.Errorf("CheckAddress(%s, %d) allowed; want refused", tc.ip, tc.port)
		case err != nil && strings.Contains(err.Error(), strings.Split(tc.ip, "%")[0]):
			t.Errorf("CheckAddress(%s) = %q names the address", tc.ip, err)
		}
	}
}

func TestRefuseServer(t *testing.T) {
	resolver := resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if host != "api.cluster.example" {
			t.Errorf("resolved %q", host)
		}
		return []netip.Addr{netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("::ffff:10.0.0.10")}, nil
	})
	d := &vendors.Destinations{AllowedNetworks: mustNetworks(t, "10.0.0.0/8"), Resolver: resolver}
	for _, server := range []string{"https://api.cluster.example:6443", "10.96.0.1", "[fd00::1]:8443"} {
		if err := d.RefuseServer(context.Background(), server); err != nil {
			t.Fatalf("RefuseServer(%s): %v", server, err)
		}
	}
	want := []string{"10.0.0.9:6443", "10.0.0.10:6443", "10.96.0.1:443", "[fd00::1]:8443"}
	if len(d.Refused) != len(want) {
		t.Fatalf("refused = %v, want %v", d.Refused, want)
	}
	for i, w := range want {
		if d.Refused[i].String() != w {
			t.Errorf("refused[%d] = %v, want %s", i, d.Refused[i], w)
		}
	}
	if err := d.CheckAddress(netip.MustParseAddr("10.0.0.10"), 6443); err == nil {
		t.Error("the API server's resolved address was allowed")
	}
	if err := d.RefuseServer(context.Background(), "https://:6443"); err == nil {
		t.Error("RefuseServer of a URL without host: no error")
	}
}

// resolverFunc is a vendors.Resolver.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// failingResolver fails the test when anything is resolved.
type failingResolver struct{ t testing.TB }

func (r failingResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.t.Errorf("resolved %q; want no lookup", host)
	return nil, &net.DNSError{Err: "no lookup expected", Name: host}
}

// scriptedResolver answers each lookup of a name with its next answer
// (the last one repeats) and counts lookups.
type scriptedResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func newScriptedResolver(answers map[string][]string) *scriptedResolver {
	r := &scriptedResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
	for host, list := range answers {
		for _, a := range list {
			var addrs []netip.Addr
			for _, s := range strings.Fields(strings.ReplaceAll(a, ",", " ")) {
				addrs = append(addrs, netip.MustParseAddr(s))
			}
			r.answers[host] = append(r.answers[host], addrs)
		}
	}
	return r
}

func (r *scriptedResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(r.calls[host], len(list)-1)
	r.calls[host]++
	return list[i], nil
}

func (r *scriptedResolver) Calls(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// recordingDialer records the addresses dialled; it connects to nothing
// (a pipe) or fails with err.
type recordingDialer struct {
	mu     sync.Mutex
	dialed []string
	err    func(address string) error
}

func (d *recordingDialer) Dial(_ context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.dialed = append(d.dialed, network+" "+address)
	d.mu.Unlock()
	if d.err != nil {
		if err := d.err(address); err != nil {
			return nil, err
		}
	}
	c, peer := net.Pipe()
	_ = peer.Close()
	return c, nil
}

func (d *recordingDialer) Dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.dialed...)
}

// A name that resolves public, then private (DNS rebinding), is dialled
// the first time and refused the second, with no dial made: the address
// checked is the address dialled, looked up again on every dial.
func TestDialContextRebinding(t *testing.T) {
	resolver := newScriptedResolver(map[string][]string{"rebind.example": {"93.184.216.34", "10.0.0.1"}})
	dialer := &recordingDialer{}
	d := &vendors.Destinations{Resolver: resolver, Dial: dialer.Dial}

	conn, err := d.DialContext(context.Background(), "tcp", "rebind.example:443")
	if err != nil {
		t.Fatalf("first dial (public answer): %v", err)
	}
	_ = conn.Close()
	if got := dialer.Dialed(); len(got) != 1 || got[0] != "tcp 93.184.216.34:443" {
		t.Fatalf("first dial connected to %v; want the checked address 93.184.216.34:443", got)
	}

	conn, err = d.DialContext(context.Background(), "tcp", "rebind.example:443")
	if err == nil {
		_ = conn.Close()
		t.Fatal("second dial (private answer) connected; want refused")
	}
	var dest *vendors.DestinationError
	if !errors.Is(err, vendors.ErrDestinationNotAllowed) || !errors.As(err, &dest) || dest.Host != "rebind.example" {
		t.Fatalf("second dial: err = %v; want a DestinationError for rebind.example", err)
	}
	if n := len(dialer.Dialed()); n != 1 {
		t.Errorf("%d dials; want none after the refusal", n)
	}
	if resolver.Calls("rebind.example") != 2 {
		t.Errorf("%d lookups; want one per dial", resolver.Calls("rebind.example"))
	}
	if msg := err.Error(); !strings.Contains(msg, "rebind.example") || strings.Contains(msg, "10.0.0.1") || strings.Contains(msg, "93.184") {
		t.Errorf("refusal %q: want the host named, never an address", msg)
	}
}

func TestDialContext(t *testing.T) {
	resolver := newScriptedResolver(map[string][]string{
		"mixed.example":    {"10.0.0.1, 93.184.216.34, 127.0.0.1, 2606:2800:220:1::1"},
		"private.example":  {"10.0.0.1, 127.0.0.1, fd00::1"},
		"metadata.example": {"169.254.169.254"},
		"nothing.example":  {""},
		"flaky.example":    {"93.184.216.34, 93.184.216.35"},
	})
	dialer := &recordingDialer{err: func(address string) error {
		if address == "93.184.216.34:443" {
			return errors.New("connect: no route")
		}
		return nil
	}}
	d := &vendors.Destinations{Resolver: resolver, Dial: dialer.Dial, AllowedNetworks: mustNetworks(t, "169.254.0.0/16")}
	dial := func(address string) error {
		conn, err := d.DialContext(context.Background(), "tcp", address)
		if err == nil {
			_ = conn.Close()
		}
		return err
	}

	// Only the allowed answers are dialled, in turn until one connects.
	if err := dial("mixed.example:443"); err != nil {
		t.Fatalf("mixed answers: %v", err)
	}
	if got := dialer.Dialed(); len(got) != 2 || got[0] != "tcp 93.184.216.34:443" || got[1] != "tcp [2606:2800:220:1::1]:443" {
		t.Errorf("mixed answers dialled %v; want the public ones only", got)
	}

	// Refusals name the host and the rule, never an address; nothing is
	// dialled.
	before := len(dialer.Dialed())
	for address, why := range map[string]string{
		"private.example:443":  "private, loopback or link-local",
		"metadata.example:80":  "cloud metadata",
		"nothing.example:443":  "resolved to no address",
		"127.0.0.1:8443":       "private, loopback or link-local",
		"[::ffff:10.0.0.1]:80": "private, loopback or link-local",
		"169.254.169.254:80":   "cloud metadata",
	} {
		err := dial(address)
		var dest *vendors.DestinationError
		if !errors.As(err, &dest) || !errors.Is(err, vendors.ErrDestinationNotAllowed) {
			t.Errorf("dial %s: err = %v; want a DestinationError", address, err)
			continue
		}
		host, port, _ := net.SplitHostPort(address)
		if dest.Host != host || !strings.Contains(err.Error(), why) || strings.Contains(err.Error(), port) {
			t.Errorf("dial %s: %q; want host %s and %q, no port", address, err, host, why)
		}
		for _, addr := range []string{"10.0.0.1", "127.0.0.1", "fd00::1", "169.254.169.254"} {
			if !strings.Contains(host, addr) && strings.Contains(err.Error(), addr) {
				t.Errorf("dial %s: %q names the address %s", address, err, addr)
			}
		}
	}
	if got := dialer.Dialed()[before:]; len(got) != 0 {
		t.Errorf("refused destinations dialled %v", got)
	}

	// A failed connection moves on to the next allowed address.
	before = len(dialer.Dialed())
	if err := dial("flaky.example:443"); err != nil {
		t.Errorf("flaky: %v", err)
	}
	if got := dialer.Dialed()[before:]; len(got) != 2 || got[1] != "tcp 93.184.216.35:443" {
		t.Errorf("flaky dialled %v; want the second address after the first failed", got)
	}

	// A lookup failure is the resolver's error; a bad port is an error.
	if err := dial("unknown.example:443"); err == nil || errors.Is(err, vendors.ErrDestinationNotAllowed) {
		t.Errorf("unknown host: err = %v; want the lookup error", err)
	}
	if err := dial("mixed.example:99999"); err == nil {
		t.Error("port 99999: no error")
	}
	if err := dial("mixed.example"); err == nil {
		t.Error("no port: no error")
	}
}

// With --vendor-proxy, dialling the proxy is exempt from the address rule
// (it is the admin's choice, typically a private address); every other
// address is still checked.
func TestDialContextProxy(t *testing.T) {
	resolver := newScriptedResolver(map[string][]string{"proxy.internal": {"10.0.0.5"}})
	dialer := &recordingDialer{}
	d, err := vendors.ParseDestinations("", "", "http://Proxy.Internal:3128")
	if err != nil {
		t.Fatal(err)
	}
	d.Resolver, d.Dial = resolver, dialer.Dial
	for _, address := range []string{"proxy.internal:3128", "PROXY.internal:3128"} {
		conn, err := d.DialContext(context.Background(), "tcp", address)
		if err != nil {
			t.Fatalf("dial the proxy at %s: %v", address, err)
		}
		_ = conn.Close()
	}
	if got := dialer.Dialed(); len(got) != 2 || got[0] != "tcp proxy.internal:3128" {
		t.Errorf("dialled %v; want the proxy's address as configured", got)
	}
	// The proxy's host on another port is not the proxy.
	if _, err := d.DialContext(context.Background(), "tcp", "proxy.internal:22"); !errors.Is(err, vendors.ErrDestinationNotAllowed) {
		t.Errorf("proxy host, other port: err = %v; want refused", err)
	}
	if _, err := d.DialContext(context.Background(), "tcp", "10.0.0.5:3128"); !errors.Is(err, vendors.ErrDestinationNotAllowed) {
		t.Errorf("proxy address spelled otherwise: err = %v; want refused", err)
	}
	// A proxy URL without a port: the scheme's.
	d2, err := vendors.ParseDestinations("", "", "https://proxy.internal")
	if err != nil {
		t.Fatal(err)
	}
	d2.Resolver, d2.Dial = resolver, dialer.Dial
	if conn, err := d2.DialContext(context.Background(), "tcp", "proxy.internal:443"); err != nil {
		t.Errorf("https proxy without port: %v", err)
	} else {
		_ = conn.Close()
	}
}

// countingTLSServer is an HTTPS server on loopback (certificate valid for
// 127.0.0.1, ::1 and example.com) that counts the connections it accepts.
func countingTLSServer(t *testing.T, h http.Handler) (*httptest.Server, func() int) {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { vendortest.JSON(w, http.StatusOK, []byte(`{}`)) })
	}
	srv := httptest.NewUnstartedServer(h)
	l := &countingListener{Listener: srv.Listener}
	srv.Listener = l
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func() int { return int(l.n.Load()) }
}

type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// assertNoConnections checks that srv accepted no connection so far: it
// makes one request that may connect and expects it to be the first
// connection accepted (the server accepts in order, so a connection made
// earlier would have been counted before it).
func assertNoConnections(t *testing.T, srv *httptest.Server, accepted func() int) {
	t.Helper()
	c := newCaller(t, vendortest.Loopback(), false, vendortest.CABundle(srv))
	if _, err := do(c, srv.URL+"/control"); err != nil {
		t.Fatalf("control request: %v", err)
	}
	if n := accepted(); n != 1 {
		t.Errorf("server accepted %d connections before the control request's; want none", n-1)
	}
}

func newCaller(t *testing.T, d *vendors.Destinations, hostRule bool, caBundle []byte) *vendors.Caller {
	t.Helper()
	c, err := vendors.NewCaller("test", d, hostRule, caBundle, 2*time.Second, nil, "caller-secret-canary")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func do(c *vendors.Caller, rawURL string) (*vendors.Response, error) {
	req, err := c.NewRequest(context.Background(), http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// The strict default refuses the loopback server: the request fails with
// DestinationNotAllowed, naming the host, and the server sees no
// connection.
func TestCallerStrictDefaultRefusesLoopback(t *testing.T) {
	srv, accepted := countingTLSServer(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	for _, d := range []*vendors.Destinations{nil, {}} {
		c := newCaller(t, d, false, vendortest.CABundle(srv))
		_, err := do(c, srv.URL+"/x")
		vendortest.WantError{Class: vendors.ErrDestinationNotAllowed, Reason: "DestinationNotAllowed",
			InMessage: "host 127.0.0.1 is a private, loopback or link-local address"}.Check(t, err)
		if strings.Count(err.Error(), vendors.ErrDestinationNotAllowed.Error()) != 1 {
			t.Errorf("message %q: want the class said once", err)
		}
		if strings.Contains(err.Error(), ":"+strconv.Itoa(port)) {
			t.Errorf("message %q names the port", err)
		}
	}
	// A name that resolves to loopback: refused, the name given.
	c := newCaller(t, &vendors.Destinations{Resolver: newScriptedResolver(map[string][]string{"example.com": {"127.0.0.1"}})}, false, vendortest.CABundle(srv))
	_, err := do(c, "https://example.com:"+strconv.Itoa(port)+"/x")
	vendortest.WantError{Class: vendors.ErrDestinationNotAllowed, InMessage: "host example.com is", NotInMessage: "127.0.0.1"}.Check(t, err)
	assertNoConnections(t, srv, accepted)
}

// With the host rule (a namespaced provider), a host outside the patterns
// is refused before anything is resolved or dialled; a host inside them
// still passes the address rule.
func TestCallerHostRuleBeforeLookup(t *testing.T) {
	dialer := &recordingDialer{}
	d := &vendors.Destinations{NamespacedHosts: mustHosts(t, "*.tines.com"), Resolver: failingResolver{t}, Dial: dialer.Dial}
	c := newCaller(t, d, true, nil)
	for _, u := range []string{"https://evil.example/api", "https://tines.com/", "https://acme.tines.com.evil.example/", "https://127.0.0.1/", "https://[::1]:8443/"} {
		_, err := do(c, u)
		host := mustURL(t, u).Host
		vendortest.WantError{Class: vendors.ErrDestinationNotAllowed, Reason: "DestinationNotAllowed",
			InMessage: "host " + host + " is not in --namespaced-provider-hosts"}.Check(t, err)
	}
	if got := dialer.Dialed(); len(got) != 0 {
		t.Errorf("dialled %v; want nothing", got)
	}

	// Inside the patterns, the name resolves to loopback: the address
	// rule refuses it, naming the host only.
	resolver := newScriptedResolver(map[string][]string{"acme.tines.com": {"127.0.0.1"}})
	d.Resolver = resolver
	_, err := do(newCaller(t, d, true, nil), "https://acme.tines.com/api/v1/user_credentials/1")
	vendortest.WantError{Class: vendors.ErrDestinationNotAllowed, InMessage: "host acme.tines.com is a private", NotInMessage: "127.0.0.1"}.Check(t, err)
	if resolver.Calls("acme.tines.com") != 1 || len(dialer.Dialed()) != 0 {
		t.Errorf("lookups %d, dials %v; want one lookup, no dial", resolver.Calls("acme.tines.com"), dialer.Dialed())
	}
	// Without the host rule (a cluster provider) the patterns do not apply.
	_, err = do(newCaller(t, d, false, nil), "https://evil.example/api")
	if errors.Is(err, vendors.ErrDestinationNotAllowed) {
		t.Errorf("cluster provider to an unlisted host: %v; want only the address rule", err)
	}
}

// Redirects: a redirect to another host, or to the same name on a port
// the host rule does not allow, is refused and the target sees no
// connection; a redirect on the same host passes both rules again.
func TestCallerRedirects(t *testing.T) {
	target, targetAccepted := countingTLSServer(t, nil)
	targetPort := strconv.Itoa(target.Listener.Addr().(*net.TCPAddr).Port)
	var hops atomic.Int32
	origin, _ := countingTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/other-port":
			http.Redirect(w, r, "https://127.0.0.1:"+targetPort+"/steal", http.StatusFound)
		case "/other-host":
			http.Redirect(w, r, "https://localhost:"+targetPort+"/steal", http.StatusFound)
		default:
			vendortest.JSON(w, http.StatusOK, []byte(`{}`))
		}
	}))
	originPort := strconv.Itoa(origin.Listener.Addr().(*net.TCPAddr).Port)
	d := vendortest.Loopback()
	// The host rule allows the origin's port only.
	d.NamespacedHosts = mustHosts(t, "127.0.0.1:"+originPort+",localhost:"+originPort)
	c := newCaller(t, d, true, vendortest.CABundle(origin))

	resp, err := do(c, origin.URL+"/same")
	if err != nil || resp.Status != http.StatusOK || hops.Load() != 2 {
		t.Fatalf("same-host redirect: %v, %+v after %d hops; want followed", err, resp, hops.Load())
	}
	for _, path := range []string{"/other-port", "/other-host"} {
		_, err := do(c, origin.URL+path)
		if err == nil {
			t.Fatalf("redirect %s followed; want refused", path)
		}
		if !errors.Is(err, vendors.ErrInvalidResponse) && !errors.Is(err, vendors.ErrDestinationNotAllowed) {
			t.Errorf("redirect %s: err = %v; want refused", path, err)
		}
		if strings.Contains(err.Error(), targetPort) {
			t.Errorf("redirect %s: %q names the target's port", path, err)
		}
	}
	assertNoConnections(t, target, targetAccepted)
}

// HTTPS_PROXY and friends are ignored: the vendor is dialled directly
// (through the address rule), the proxy sees nothing.
func TestCallerIgnoresProxyEnvironment(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		proxied.Add(1)
		w.WriteHeader(http.StatusForbidden)
	}))
	defer proxy.Close()
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"} {
		t.Setenv(k, proxy.URL)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		t.Setenv(k, "")
	}
	if os.Getenv("HTTPS_PROXY") != proxy.URL {
		t.Fatal("environment not set")
	}
	srv, accepted := countingTLSServer(t, nil)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	// example.com (a name, so no loopback exception of the environment's
	// proxy rules applies) resolves to the loopback server.
	d := vendortest.Loopback()
	d.Resolver = newScriptedResolver(map[string][]string{"example.com": {"127.0.0.1"}})
	resp, err := do(newCaller(t, d, false, vendortest.CABundle(srv)), "https://example.com:"+port+"/x")
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("request: %v, %+v", err, resp)
	}
	if proxied.Load() != 0 || accepted() != 1 {
		t.Errorf("proxy saw %d requests, vendor %d connections; want 0 and 1", proxied.Load(), accepted())
	}
}

// --vendor-proxy carries every vendor connection: the proxy (on loopback
// here, outside the allowed networks) is dialled, the vendor's name is not
// resolved here; the host rule still applies to the target.
func TestCallerVendorProxy(t *testing.T) {
	var mu sync.Mutex
	var connects []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		connects = append(connects, r.Method+" "+r.Host)
		mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
	}))
	defer proxy.Close()
	d, err := vendors.ParseDestinations("*.tines.com", "", proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	d.Resolver = failingResolver{t}
	c := newCaller(t, d, true, nil)
	_, err = do(c, "https://acme.tines.com/api/v1/user_credentials/1")
	vendortest.WantError{Class: vendors.ErrUnavailable, InMessage: "connection failed"}.Check(t, err)
	// The host rule applies to the target through the proxy.
	_, err = do(c, "https://evil.example/")
	vendortest.WantError{Class: vendors.ErrDestinationNotAllowed, InMessage: "host evil.example is not in"}.Check(t, err)
	mu.Lock()
	defer mu.Unlock()
	if len(connects) != 1 || connects[0] != "CONNECT acme.tines.com:443" {
		t.Errorf("proxy saw %v; want one CONNECT to acme.tines.com:443", connects)
	}
}

// Transport failures read as fixed classes: never an address, a port, a
// resolver's words or a certificate's names.
func TestCallerTransportClasses(t *testing.T) {
	closed, _ := vendortest.ClosedURL(t) // the exact messages below name no port
	untrusted := vendortest.NewCanaryTLSServer(t, true)
	defer untrusted.Close()
	wrongName := vendortest.NewCanaryTLSServer(t, false)
	defer wrongName.Close()
	plainHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, vendortest.Canary)
	}))
	defer plainHTTP.Close()

	canaryDNS := resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host " + vendortest.Canary, Name: host, Server: "10.0.0.53:53", IsNotFound: true}
	})
	timeoutDial := func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded,
			Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 4242}}
	}
	loopback := vendortest.Loopback()
	withDNS := vendortest.Loopback()
	withDNS.Resolver = canaryDNS
	withTimeout := vendortest.Loopback()
	withTimeout.Dial = timeoutDial

	cases := []struct {
		name     string
		d        *vendors.Destinations
		caBundle []byte
		url      string
		want     string
	}{
		{"closed port", loopback, nil, closed + "/x", "vendor unavailable: connection failed"},
		{"untrusted certificate", loopback, nil, untrusted.URL + "/x", "vendor unavailable: TLS verification failed"},
		{"trusted certificate, other names", loopback, vendortest.CABundle(wrongName), wrongName.URL + "/x", "vendor unavailable: TLS verification failed"},
		// net/http reads the plain answer as http.ErrSchemeMismatch.
		{"not TLS", loopback, nil, strings.Replace(plainHTTP.URL, "http://", "https://", 1) + "/x", "vendor unavailable: connection failed"},
		{"DNS failure", withDNS, nil, "https://" + vendortest.Canary + ".example/x", "vendor unavailable: DNS lookup failed"},
		{"dial timeout", withTimeout, nil, "https://127.0.0.1:4242/x", "vendor unavailable: timeout: no answer within 2s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := do(newCaller(t, tc.d, false, tc.caBundle), tc.url)
			if err == nil {
				t.Fatal("request succeeded")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("err = %q, want %q", got, tc.want)
			}
			vendortest.WantError{Class: vendors.ErrUnavailable, Reason: "VendorUnavailable", NotInMessage: vendortest.Canary}.Check(t, err)
		})
	}
}
