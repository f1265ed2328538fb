package vendortest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/vendors"
)

// Canary is text a test plants where an answer or a connection could
// carry it back (a body, a certificate's names): no error, condition or
// event may repeat it (API.md, "Nothing reflected").
const Canary = "canary-4f1d-db_password"

// CanaryFault is a Fault whose answer carries Canary, and its name.
type CanaryFault struct {
	Name  string
	Fault Fault
}

// CanaryFaults are answers that carry Canary where no error may repeat
// it: 5xx bodies in the vendor's documented error shape (documented
// renders a message in it), as plain text and as an HTML page; 4xx
// bodies that are not JSON, or JSON of another shape; 2xx answers that
// are not the documented JSON.
func CanaryFaults(documented func(message string) string) []CanaryFault {
	const (
		html  = "<html><head><title>" + Canary + "</title></head><body><h1>" + Canary + "</h1></body></html>"
		plain = "db_password=" + Canary + "\n"
	)
	other := `{"detail":"` + Canary + `","title":"` + Canary + `","description":"` + Canary + `"}`
	return []CanaryFault{
		{"500 documented JSON", Fault{Status: http.StatusInternalServerError, ContentType: "application/json", Body: documented(Canary)}},
		{"503 documented JSON", Fault{Status: http.StatusServiceUnavailable, ContentType: "application/json", Body: documented(Canary)}},
		{"500 plain", Fault{Status: http.StatusInternalServerError, ContentType: "text/plain", Body: plain}},
		{"502 HTML", Fault{Status: http.StatusBadGateway, ContentType: "text/html", Body: html}},
		{"504 other JSON", Fault{Status: http.StatusGatewayTimeout, ContentType: "application/json", Body: other}},
		{"400 plain", Fault{Status: http.StatusBadRequest, ContentType: "text/plain", Body: plain}},
		{"401 HTML", Fault{Status: http.StatusUnauthorized, ContentType: "text/html", Body: html}},
		{"403 plain", Fault{Status: http.StatusForbidden, ContentType: "text/plain", Body: plain}},
		{"404 HTML", Fault{Status: http.StatusNotFound, ContentType: "text/html", Body: html}},
		{"429 plain", Fault{Status: http.StatusTooManyRequests, ContentType: "text/plain", Body: plain}},
		{"400 other JSON", Fault{Status: http.StatusBadRequest, ContentType: "application/json", Body: other}},
		{"200 HTML", Fault{Status: http.StatusOK, ContentType: "text/html", Body: html}},
		{"200 broken JSON", Fault{Status: http.StatusOK, ContentType: "application/json", Body: `{"id":"` + Canary}},
		{"200 plain", Fault{Status: http.StatusOK, ContentType: "text/plain", Body: plain}},
	}
}

// NewCanaryTLSServer starts an HTTPS server on loopback whose self-signed
// certificate carries Canary in its subject and DNS names. With ipSAN it
// is valid for 127.0.0.1 too (a client that does not trust it fails on
// the authority); without, a client that trusts it (CABundle) still fails
// on the name. The handler answers 200 {}.
func NewCanaryTLSServer(t TB, ipSAN bool) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("canary key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		Subject: pkix.Name{
			CommonName:         Canary + ".example",
			Organization:       []string{Canary},
			OrganizationalUnit: []string{Canary},
		},
		DNSNames:              []string{Canary + ".example", "*." + Canary + ".example"},
		EmailAddresses:        []string{Canary + "@example.com"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	if ipSAN {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("canary certificate: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		JSON(w, http.StatusOK, []byte(`{}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the clients' refused handshakes
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	return srv
}

// ClosedURL is an https:// URL on loopback where nothing listens (a port
// that was free a moment ago), and its port.
func ClosedURL(t TB) (rawURL, port string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return "https://127.0.0.1:" + port, port
}

// WantNoCanary fails t unless err is an error that holds no Canary and,
// when status is an error status, names it ("HTTP 502").
func WantNoCanary(t TB, err error, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one")
	}
	if strings.Contains(err.Error(), Canary) {
		t.Errorf("error %q reflects the canary", err)
	}
	if want := "HTTP " + strconv.Itoa(status); status >= 400 && !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the status: want %q", err, want)
	}
}

// WantTransportClass fails t unless err holds class (a fixed transport
// class: "connection failed", "TLS verification failed", ...) and none of
// Canary, the loopback address and the forbidden words.
func WantTransportClass(t TB, err error, class string, forbidden ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %q", class)
	}
	if !errors.Is(err, vendors.ErrUnavailable) || !strings.Contains(err.Error(), class) {
		t.Errorf("error %q: want VendorUnavailable, %q", err, class)
	}
	for _, s := range append([]string{Canary, "127.0.0.1", "refused", "x509", "certificate"}, forbidden...) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds %q", err, s)
		}
	}
}

// Runner is the part of *testing.T that runs subtests (T is *testing.T).
type Runner[T any] interface {
	TB
	Run(name string, f func(t T)) bool
}

// Faulter is the part of a vendor fake that takes faults.
type Faulter interface {
	Set(id string, f Fault)
	Clear(id string)
}

// WithKeyCheck is srv setting each fault on the key check's requests
// (keyCheck) too: a client reads a 401 for a token as Unauthorized only
// when the key check fails as well (otherwise the token is what is
// missing).
func WithKeyCheck(srv Faulter, keyCheck string) Faulter { return withKeyCheck{srv, keyCheck} }

type withKeyCheck struct {
	Faulter
	keyCheck string
}

func (w withKeyCheck) Set(id string, f Fault) {
	w.Faulter.Set(id, f)
	if id != w.keyCheck {
		w.Faulter.Set(w.keyCheck, f)
	}
}

func (w withKeyCheck) Clear(id string) {
	w.Faulter.Clear(id)
	w.Faulter.Clear(w.keyCheck)
}

// NoCanaryIn fails t when any of values (what a client mapped: a
// Credential, a Page), marshalled to JSON, holds Canary.
func NoCanaryIn(t TB, values ...any) {
	t.Helper()
	for _, v := range values {
		if b, _ := json.Marshal(v); strings.Contains(string(b), Canary) {
			t.Errorf("mapped answer holds the canary: %s", b)
		}
	}
}

// CanaryCall is one client call of the fault matrix's canary rows: Key is
// the fake's key of the requests it makes (Scenarios.Set).
type CanaryCall struct {
	Name, Key string
	Call      func() error
	// AnyOK: any 2xx answer is a success (the body is not read).
	AnyOK bool
}

// CheckCanaries runs each call with each fault set on its key (a subtest
// each) and fails unless the call's error holds no Canary, names the
// status (WantNoCanary) and, for an error status, is of the status's
// class (vendors.ClassForStatus). more, when set, checks the error too.
func CheckCanaries[T Runner[T]](t T, srv Faulter, calls []CanaryCall, faults []CanaryFault, more func(t T, err error)) {
	for _, call := range calls {
		for _, f := range faults {
			t.Run(call.Name+" "+f.Name, func(t T) {
				srv.Set(call.Key, f.Fault)
				defer srv.Clear(call.Key)
				err := call.Call()
				if call.AnyOK && f.Fault.Status < 300 && err == nil {
					return
				}
				WantNoCanary(t, err, f.Fault.Status)
				if want := vendors.ClassForStatus(f.Fault.Status); f.Fault.Status >= 400 && !errors.Is(err, want) {
					t.Errorf("err %v: want class %v", err, want)
				}
				if more != nil {
					more(t, err)
				}
			})
		}
	}
}

// CheckTransport connects to a server whose certificate nobody trusts,
// to one whose trusted certificate (caBundle) is for other names and to
// a closed port, a subtest each, and fails unless every error connect
// returns is the fixed class of its failure, without the port or secret.
func CheckTransport[T Runner[T]](t T, secret string, connect func(t T, url string, caBundle []byte) []error) {
	untrusted := NewCanaryTLSServer(t, true)
	defer untrusted.Close()
	wrongName := NewCanaryTLSServer(t, false)
	defer wrongName.Close()
	closed, _ := ClosedURL(t)
	cases := []struct {
		name, url string
		caBundle  []byte
		class     string
	}{
		{"certificate of unknown authority", untrusted.URL, nil, "TLS verification failed"},
		{"trusted certificate for other names", wrongName.URL, CABundle(wrongName), "TLS verification failed"},
		{"closed port", closed, nil, "connection failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatalf("%v", err)
			}
			for _, err := range connect(t, tc.url, tc.caBundle) {
				WantTransportClass(t, err, tc.class, u.Port(), secret)
			}
		})
	}
}
