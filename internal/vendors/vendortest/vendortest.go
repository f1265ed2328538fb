// Package vendortest is what every vendor's fake server shares: an HTTPS
// server on loopback, per-credential fault scenarios (one-shot or
// persistent), global latency, and a record of the calls made. A vendor's
// fake (tinestest, ...) supplies its routes, payloads and error bodies.
package vendortest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// Fault is how the fake answers one request instead of the normal answer.
type Fault struct {
	// Status, when set, answers with this status and, unless Body is set,
	// the vendor's own error body for it.
	Status int
	// RetryAfter is sent as the Retry-After header when set.
	RetryAfter string
	// Body and ContentType, when Body is set, are sent verbatim.
	Body        string
	ContentType string
	// Header holds extra response headers.
	Header http.Header
	// Delay is waited before answering (or before the normal answer when
	// Status is 0). It ends early when the client goes away.
	Delay time.Duration
	// Reset closes the connection without answering.
	Reset bool
	// RedirectTo answers 302 with this Location.
	RedirectTo string
}

// Ready-made faults. Vendor fakes render Status-only faults with their own
// error bodies.
var (
	NotFound       = Fault{Status: http.StatusNotFound}
	Forbidden      = Fault{Status: http.StatusForbidden}
	Unauthorized   = Fault{Status: http.StatusUnauthorized}
	ServerError    = Fault{Status: http.StatusInternalServerError}
	BadGatewayHTML = Fault{
		Status:      http.StatusBadGateway,
		ContentType: "text/html",
		Body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
			"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
	}
	BrokenJSON = Fault{Status: http.StatusOK, ContentType: "application/json", Body: `{"id": 1, "name": "trunc`}
	EmptyBody  = Fault{Status: http.StatusOK, ContentType: "application/json", Body: " "}
	Reset      = Fault{Reset: true}
)

// RateLimited is a 429 with the given Retry-After ("" for none).
func RateLimited(retryAfter string) Fault {
	return Fault{Status: http.StatusTooManyRequests, RetryAfter: retryAfter}
}

// Latency delays the normal answer by d.
func Latency(d time.Duration) Fault { return Fault{Delay: d} }

// HugeBody is a 200 whose body is larger than any client should read.
func HugeBody() Fault {
	return Fault{Status: http.StatusOK, ContentType: "application/json",
		Body: `{"id":1,"name":"` + strings.Repeat("x", 2<<20) + `"}`}
}

// Scenarios holds the faults and call records of one fake server.
// Safe for concurrent use.
type Scenarios struct {
	mu      sync.Mutex
	once    map[string][]Fault
	always  map[string]Fault
	calls   map[string][]time.Time
	total   int
	latency time.Duration
	now     func() time.Time
	nowOf   map[string]func() time.Time
}

// SetClock makes now the time requests are recorded at (CallTimes):
// a test's fake clock. time.Now when not set.
func (s *Scenarios) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetClockOf is SetClock for the requests for id only: a fake shared by
// tests that each have a clock of their own.
func (s *Scenarios) SetClockOf(id string, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nowOf == nil {
		s.nowOf = map[string]func() time.Time{}
	}
	s.nowOf[id] = now
}

func (s *Scenarios) init() {
	if s.once == nil {
		s.once = map[string][]Fault{}
		s.always = map[string]Fault{}
		s.calls = map[string][]time.Time{}
	}
}

// FailNext makes the next len(faults) requests for id answer with faults,
// in order; later requests are answered normally (or by Set's fault). A
// zero Fault{} answers its request normally, so FailNext(id, Fault{},
// Fault{}, RateLimited("1")) makes the third request from now a 429.
func (s *Scenarios) FailNext(id string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.once[id] = append(s.once[id], faults...)
}

// Set makes every request for id answer with f until Clear.
func (s *Scenarios) Set(id string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.always[id] = f
}

// Clear removes id's faults: the fake heals.
func (s *Scenarios) Clear(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	delete(s.always, id)
	delete(s.once, id)
}

// SetLatency delays every answer by d.
func (s *Scenarios) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Calls returns how many requests were made for id.
func (s *Scenarios) Calls(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls[id])
}

// CallTimes returns when requests for id arrived.
func (s *Scenarios) CallTimes(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls[id]...)
}

// TotalCalls returns how many requests were made for any id.
func (s *Scenarios) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetCalls forgets the requests made so far.
func (s *Scenarios) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.total = map[string][]time.Time{}, 0
}

// Record notes a request for id and returns the fault to apply, if any,
// with the global latency folded in.
func (s *Scenarios) Record(id string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	at := time.Now()
	if now := s.nowOf[id]; now != nil {
		at = now()
	} else if s.now != nil {
		at = s.now()
	}
	s.calls[id] = append(s.calls[id], at)
	s.total++
	f, ok := Fault{}, false
	if q := s.once[id]; len(q) > 0 {
		f, ok = q[0], true
		s.once[id] = q[1:]
	} else if a, found := s.always[id]; found {
		f, ok = a, true
	}
	f.Delay += s.latency
	return f, ok || f.Delay > 0
}

// ErrorBody renders a vendor's error answer for a status.
type ErrorBody func(status int) (contentType, body string)

// Intercept records a request for id and carries out its fault (Record,
// Apply): true when it answered, and the fake answers no more.
func (s *Scenarios) Intercept(w http.ResponseWriter, r *http.Request, id string, errorBody ErrorBody) bool {
	f, ok := s.Record(id)
	return ok && Apply(w, r, f, errorBody)
}

// WriteError answers status with errorBody's body for it.
func WriteError(w http.ResponseWriter, status int, errorBody ErrorBody) {
	ct, body := errorBody(status)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// Apply carries out f on w. It returns true when it answered, false when
// the fake should give its normal answer (a pure delay).
func Apply(w http.ResponseWriter, r *http.Request, f Fault, errorBody ErrorBody) bool {
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			// The client went away: drop the connection rather than
			// answer an empty 200 that nobody asked for.
			panic(http.ErrAbortHandler)
		}
	}
	switch {
	case f.Reset:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case f.RedirectTo != "":
		http.Redirect(w, r, f.RedirectTo, http.StatusFound)
		return true
	case f.Status == 0:
		return false
	}
	for k, v := range f.Header {
		w.Header()[k] = v
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	ct, body := f.ContentType, f.Body
	if body == "" {
		ct, body = errorBody(f.Status)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(body))
	return true
}

// NewTLSServer starts an HTTPS server on loopback. Its certificate is valid
// for 127.0.0.1, ::1 and example.com; CABundle returns its PEM.
func NewTLSServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake noise from clients that give up
	srv.StartTLS()
	return srv
}

// CABundle is the PEM certificate a client needs to trust srv.
func CABundle(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// HTTPS is a vendor fake's listener (NewTLSServer): its base URL, Close,
// and the caBundle a provider needs to trust it. Fakes embed it.
type HTTPS struct {
	// URL is the fake's base URL (https://127.0.0.1:port).
	URL string
	srv *httptest.Server
}

// Listen starts h on a NewTLSServer.
func (s *HTTPS) Listen(h http.Handler) {
	s.srv = NewTLSServer(h)
	s.URL = s.srv.URL
}

// Close shuts the server down.
func (s *HTTPS) Close() { s.srv.Close() }

// CABundle is the PEM a provider's caBundle needs to trust the fake.
func (s *HTTPS) CABundle() []byte { return CABundle(s.srv) }

// HTTPClient is a plain net/http client that trusts caBundle (a fake's
// CABundle), for tests that talk to a fake without a vendor client.
func HTTPClient(caBundle []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caBundle)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// JSON writes body as a JSON answer.
func JSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteJSON writes v, marshalled, as a JSON answer.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	JSON(w, status, b)
}

// NewClient builds vendor v's client for spec through a registry, as the
// operator does: the registry picks the vendor block and builds the Caller.
func NewClient(v vendors.Vendor, spec *v1alpha1.CredentialProviderSpec, secret map[string]string, timeout time.Duration) (vendors.Client, error) {
	reg := vendors.NewRegistry(v)
	reg.Timeout = timeout
	reg.Destinations = Loopback()
	selected, err := reg.For(spec)
	if err != nil {
		return nil, err
	}
	return reg.NewClient("test", false, selected, spec, secret, nil)
}

// Loopback returns the destination rules of tests, the demo and the
// benchmark: the fakes listen on loopback, which the default rules refuse
// (as a namespaced provider's host, and as an address); every other rule
// stays as strict as the manager's defaults.
func Loopback() *vendors.Destinations {
	d, err := vendors.ParseDestinations(loopbackHosts, loopbackNetworks, "")
	if err != nil {
		panic(err)
	}
	return d
}

const (
	loopbackHosts    = "127.0.0.1,localhost,::1"
	loopbackNetworks = "127.0.0.0/8,::1/128"
)

// LoopbackFlags are the manager flags of Loopback: what lets a manager
// reach the fakes.
var LoopbackFlags = []string{"--namespaced-provider-hosts=" + loopbackHosts, "--allowed-private-networks=" + loopbackNetworks}

// TB is the part of testing.TB that WantError.Check uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// WantError is what a vendor client's error must be: its class, its
// condition reason (unchecked when empty), text its message holds (and,
// when set, does not hold), and its Retry-After, within two seconds above
// RetryAfter (HTTP dates drop the fraction of a second).
type WantError struct {
	Class        error
	Reason       string
	InMessage    string
	NotInMessage string
	RetryAfter   time.Duration
}

// Check fails t unless err is what w says, and when err holds any of
// secrets.
func (w WantError) Check(t TB, err error, secrets ...string) {
	t.Helper()
	if !errors.Is(err, w.Class) {
		t.Fatalf("err = %v, want class %v", err, w.Class)
	}
	if reason, _ := vendors.Reason(err); w.Reason != "" && reason != w.Reason {
		t.Errorf("reason = %s, want %s", reason, w.Reason)
	}
	if !strings.Contains(err.Error(), w.InMessage) {
		t.Errorf("message %q does not contain %q", err.Error(), w.InMessage)
	}
	if w.NotInMessage != "" && strings.Contains(err.Error(), w.NotInMessage) {
		t.Errorf("message %q contains %q", err.Error(), w.NotInMessage)
	}
	if got := vendors.RetryAfter(err); got < w.RetryAfter || got > w.RetryAfter+2*time.Second {
		t.Errorf("retryAfter = %v, want about %v", got, w.RetryAfter)
	}
	for _, secret := range secrets {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q holds a secret", err)
		}
	}
}
