package vendors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/credsync/credsync/api/v1alpha1"
)

// maxBodyBytes caps how much of a vendor's answer is read.
const maxBodyBytes = 1 << 20

// maxMessageLen caps a vendor message copied into an error.
const maxMessageLen = 256

// Observer is told of every vendor request: the vendor, the provider it
// was made for, what it was for (an operation), the status code (or
// "error") and the latency.
type Observer interface {
	ObserveRequest(vendor, provider, operation, code string, elapsed time.Duration)
}

// operation says what a vendor request was for, in request metrics.
type operation string

// Operations.
const (
	// opRead reads one credential (and a token it needs).
	opRead operation = "read"
	// opVerify checks the provider's key.
	opVerify operation = "verify"
	// opList lists the account's credentials (an inventory sweep).
	opList operation = "list"
)

type operationKey struct{}

// withOperation marks the requests made with ctx as made for op.
func withOperation(ctx context.Context, op operation) context.Context {
	return context.WithValue(ctx, operationKey{}, op)
}

func operationOf(ctx context.Context) operation {
	if op, ok := ctx.Value(operationKey{}).(operation); ok {
		return op
	}
	return opRead
}

// Caller makes HTTP requests to one vendor account: TLS 1.2 or newer with
// the provider's extra trust roots, a timeout per request, answers read up
// to maxBodyBytes, redirects to another host refused (so credentials never
// travel there), and every error redacted of the provider's secrets.
type Caller struct {
	vendor    string
	provider  string // label for the observer
	gate      *Gate  // told of vendor rate-limit headers; may be nil
	client    *http.Client
	transport *http.Transport
	timeout   time.Duration
	observer  Observer
	redactor  *strings.Replacer
	clock     clock.PassiveClock
	// rateHeaders reads the vendor's rate-limit headers: how long to hold
	// the provider's calls (rateLimitHeaders when nil).
	rateHeaders func(get func(string) string, now time.Time) (time.Duration, bool)
	closed      atomic.Bool
}

var errCrossHostRedirect = errors.New("redirect to another host refused")

// NewCaller returns a Caller for vendor whose connections pass dest's
// rules (the strict default when nil): the address rule always, the host
// rule too when hostRule is set (a namespaced provider). caBundle, when
// set, must hold at least one PEM certificate; secrets are redacted from
// every error.
func NewCaller(vendor string, dest *Destinations, hostRule bool, caBundle []byte, timeout time.Duration, obs Observer, secrets ...string) (*Caller, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caBundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, fmt.Errorf("%w: caBundle holds no PEM certificate", ErrInvalidSpec)
		}
		tlsConfig.RootCAs = pool
	}
	if dest == nil {
		dest = &Destinations{}
	}
	// The one transport of vendor connections: every dial passes the
	// address rule; only an explicit --vendor-proxy is used.
	transport := &http.Transport{
		Proxy:                 dest.proxy(),
		DialContext:           dest.DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
	}
	var rt http.RoundTripper = transport
	if hostRule {
		rt = hostGuard{next: transport, hosts: dest.NamespacedHosts}
	}
	client := &http.Client{
		Transport: rt,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" || req.URL.Host != via[0].URL.Host {
				return errCrossHostRedirect
			}
			return nil
		},
	}
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 { // shorter values would redact ordinary words
			pairs = append(pairs, s, "[redacted]")
		}
	}
	return &Caller{
		vendor:    vendor,
		client:    client,
		transport: transport,
		timeout:   timeout,
		observer:  obs,
		redactor:  strings.NewReplacer(pairs...),
		clock:     clock.RealClock{},
	}, nil
}

// errClosed is the error of a request made through a closed Caller.
var errClosed = errors.New("client closed: the provider's spec or Secret changed")

// Close closes the Caller's idle connections and refuses new requests;
// connections of requests in flight are closed as they end. A client
// rebuilt after a Secret or spec change leaves nothing open behind it.
func (c *Caller) Close() {
	c.closed.Store(true)
	c.transport.CloseIdleConnections()
}

// Response is a vendor's answer with its body read.
type Response struct {
	Status int
	Header http.Header
	// Body holds at most maxBodyBytes; Truncated says there was more.
	Body      []byte
	Truncated bool
}

// OK reports a 2xx status.
func (r *Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

// NewRequest builds a request to a vendor URL with Accept: application/json.
func (c *Caller) NewRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidSpec, c.redact(err.Error()))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "credsync")
	return req, nil
}

// Get sends a GET of url with the Authorization header authorization and
// reads the answer, whatever its status.
func (c *Caller) Get(ctx context.Context, url, authorization string) (*Response, error) {
	req, err := c.NewRequest(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", authorization)
	return c.Do(req)
}

// GetOK is Get that returns a 2xx answer, or Fail's error for any other,
// with the code and message errorFields parses from the vendor's
// documented error shape (nil: the vendor documents none).
func (c *Caller) GetOK(ctx context.Context, url, authorization string, errorFields func(*Response) (code, message string)) (*Response, error) {
	resp, err := c.Get(ctx, url, authorization)
	if err != nil {
		return nil, err
	}
	if !resp.OK() {
		var code, message string
		if errorFields != nil {
			code, message = errorFields(resp)
		}
		return nil, c.Fail(resp, code, message)
	}
	return resp, nil
}

// KeyAPI is a vendor API called with one API key from the provider's
// Secret: its base URL, the Caller, and the Authorization header the key
// makes.
type KeyAPI struct {
	Base          string
	Caller        *Caller
	authorization string
}

// NewKeyAPI returns the API at base, called with the Secret's value of key
// sent as "scheme value".
func NewKeyAPI(cfg Config, base string, key v1alpha1.SecretKeySelector, scheme string) KeyAPI {
	return KeyAPI{Base: base, Caller: cfg.Caller, authorization: scheme + " " + cfg.Secret[key.KeyOrDefault()]}
}

// Get GETs url and returns a 2xx answer, or Fail's error for any other
// (errorFields as for Caller.GetOK).
func (a KeyAPI) Get(ctx context.Context, url string, errorFields func(*Response) (code, message string)) (*Response, error) {
	return a.Caller.GetOK(ctx, url, a.authorization, errorFields)
}

// Do sends req and reads the answer. Any HTTP status is a Response; a
// transport failure, timeout or refused redirect is an *Error.
func (c *Caller) Do(req *http.Request) (*Response, error) {
	if c.closed.Load() {
		return nil, &Error{Class: ErrUnavailable, Message: errClosed.Error()}
	}
	start := c.clock.Now()
	op := operationOf(req.Context())
	resp, err := c.client.Do(req)
	if err != nil {
		if !errors.Is(err, ErrDestinationNotAllowed) { // refused before any connection: no request was made
			c.observe(op, "error", start)
		}
		return nil, c.transportError(err)
	}
	defer func() {
		_ = resp.Body.Close()
		if c.closed.Load() {
			c.transport.CloseIdleConnections()
		}
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	c.observe(op, strconv.Itoa(resp.StatusCode), start)
	if d, ok := c.rateLimited(resp.Header); ok && c.gate != nil {
		c.gate.PauseFor(d)
	}
	if err != nil {
		return nil, c.transportError(err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if len(body) > maxBodyBytes {
		out.Body, out.Truncated = body[:maxBodyBytes], true
	}
	return out, nil
}

// SetRateLimitHeaders makes f read the vendor's rate-limit headers: when
// it says to hold back, the provider's calls wait that long. f's now is
// when the vendor answered (rateLimited). Set before the first request.
func (c *Caller) SetRateLimitHeaders(f func(get func(string) string, now time.Time) (time.Duration, bool)) {
	c.rateHeaders = f
}

// rateLimited reads an answer's rate-limit headers. A reader's now is
// when the vendor answered: by the answer's Date header when it has one
// (the vendor's clock, which its reset times are on; ours may be skewed),
// else by ours.
func (c *Caller) rateLimited(h http.Header) (time.Duration, bool) {
	if c.rateHeaders != nil {
		now, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			now = c.clock.Now()
		}
		d, ok := c.rateHeaders(h.Get, now)
		return min(d, maxRetryAfter), ok
	}
	return rateLimitHeaders(h.Get)
}

func (c *Caller) observe(op operation, code string, start time.Time) {
	if c.observer != nil {
		c.observer.ObserveRequest(c.vendor, c.provider, string(op), code, c.clock.Since(start))
	}
}

// Transport failures, in the fixed words a condition carries: never an
// address, a port's state or a certificate's names.
const (
	transportConnection = "connection failed"
	transportTimeout    = "timeout"
	transportTLS        = "TLS verification failed"
	transportDNS        = "DNS lookup failed"
)

func (c *Caller) transportError(err error) error {
	var dest *DestinationError
	switch {
	case errors.Is(err, errCrossHostRedirect):
		return &Error{Class: ErrInvalidResponse, Message: errCrossHostRedirect.Error()}
	case errors.As(err, &dest):
		return &Error{Class: ErrDestinationNotAllowed, Message: dest.detail()}
	}
	class := transportClass(err)
	if class == transportTimeout {
		class = fmt.Sprintf("%s: no answer within %s", class, c.timeout)
	}
	return &Error{Class: ErrUnavailable, Message: class}
}

// transportClass names what kind of transport failure err is.
func transportClass(err error) string {
	var (
		netErr    net.Error
		dnsErr    *net.DNSError
		verifyErr *tls.CertificateVerificationError
		hostErr   x509.HostnameError
		authErr   x509.UnknownAuthorityError
		certErr   x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
		echErr    *tls.ECHRejectionError
	)
	switch {
	case errors.As(err, &dnsErr):
		return transportDNS
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return transportTimeout
	case errors.As(err, &verifyErr), errors.As(err, &hostErr), errors.As(err, &authErr), errors.As(err, &certErr),
		errors.As(err, &recordErr), errors.As(err, &alertErr), errors.As(err, &echErr):
		return transportTLS
	}
	return transportConnection
}

// Fail returns the error for a non-2xx answer: its class from the status,
// Retry-After when present, and for a 4xx answer the vendor's code and
// message as its client parsed them from the vendor's documented error
// shape (cleaned, redacted, truncated). A 5xx answer is its status alone:
// what a server says when it fails is not the vendor speaking.
func (c *Caller) Fail(resp *Response, code, message string) error {
	e := &Error{Class: ClassForStatus(resp.Status), Status: resp.Status}
	if resp.Status >= 400 && resp.Status < 500 {
		e.Code, e.Message = c.clean(code), c.clean(message)
	}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now()); ok {
		e.RetryAfter = d
	} else if d, ok := c.rateLimited(resp.Header); ok && resp.Status == http.StatusTooManyRequests {
		e.RetryAfter = d
	}
	return e
}

// Invalid returns an InvalidResponse error for a 2xx answer that is not
// what the vendor documents.
func (c *Caller) Invalid(resp *Response, format string, args ...any) error {
	return &Error{Class: ErrInvalidResponse, Status: resp.Status, Message: c.clean(fmt.Sprintf(format, args...))}
}

// CheckBody refuses, with InvalidResponse, a 2xx answer that cannot be
// the JSON a vendor documents: cut at the size cap, empty, or HTML.
func (c *Caller) CheckBody(resp *Response) error {
	if resp.Truncated {
		return c.Invalid(resp, "answer larger than %d bytes", maxBodyBytes)
	}
	if len(strings.TrimSpace(string(resp.Body))) == 0 {
		return c.Invalid(resp, "empty answer")
	}
	if looksHTML(resp.Body) {
		return c.Invalid(resp, "HTML page instead of JSON")
	}
	return nil
}

// DecodeJSON decodes a 2xx answer into v, or returns InvalidResponse.
func (c *Caller) DecodeJSON(resp *Response, v any) error {
	if err := c.CheckBody(resp); err != nil {
		return err
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		// Go's own words, which may quote a character of the answer:
		// only the field at fault is named.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return c.Invalid(resp, "answer is not the documented JSON: %s is not a %s", typeErr.Field, typeErr.Type)
		}
		return c.Invalid(resp, "answer is not the documented JSON")
	}
	return nil
}

func (c *Caller) redact(s string) string { return c.redactor.Replace(s) }

// clean makes vendor text fit for a condition message: control
// characters and runs of space folded, secrets redacted, length capped.
func (c *Caller) clean(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == ' '
	}), " ")
	s = c.redact(s)
	if r := []rune(s); len(r) > maxMessageLen {
		s = string(r[:maxMessageLen]) + "…"
	}
	return s
}

func looksHTML(b []byte) bool {
	head := strings.ToLower(strings.TrimSpace(string(b[:min(len(b), 512)])))
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") ||
		strings.HasPrefix(head, "<head") || strings.HasPrefix(head, "<body")
}
