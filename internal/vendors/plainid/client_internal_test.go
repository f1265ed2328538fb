package plainid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

func TestBaseURL(t *testing.T) {
	cases := []struct {
		region, url string
		want        string // "" when the spec is invalid
	}{
		{region: "us1", want: "https://api.us1.plainid.io"},
		{region: "eu1", want: "https://api.eu1.plainid.io"},
		{region: "ca1", url: "https://plainid.example.com/", want: "https://plainid.example.com"},
		{url: "https://gw.example.com/plainid/", want: "https://gw.example.com/plainid"},
		{url: "https://gw.example.com:8443/a/b//", want: "https://gw.example.com:8443/a/b"},
		{url: "http://api.us1.plainid.io"},
		{url: "https://"},
		{url: "https://gw.example.com/?x=1"},
		{url: "https://gw.example.com/?"},
		{url: "https://gw.example.com/#top"},
		{url: "https://user:pass@gw.example.com"},
		{url: "::not a url"},
		{},
		{region: "US1"},
		{region: "evil.example.com/x"},
		{region: "-us1"},
		{region: strings.Repeat("a", 64)},
	}
	for _, tc := range cases {
		t.Run(tc.region+tc.url, func(t *testing.T) {
			got, err := baseURL(&v1alpha1.PlainIDProvider{Region: tc.region, URL: tc.url})
			if tc.want == "" {
				if !errors.Is(err, vendors.ErrInvalidSpec) {
					t.Errorf("baseURL = %q, %v; want InvalidSpec", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("baseURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestVendorRegistration(t *testing.T) {
	v := Vendor()
	spec := &v1alpha1.CredentialProviderSpec{PlainID: &v1alpha1.PlainIDProvider{
		Region: "us1", ClientSecretRef: v1alpha1.SecretReference{Name: "plainid-admin"},
	}}
	if v.Name != v1alpha1.VendorPlainID || !v.Selected(spec) {
		t.Errorf("vendor = %+v", v)
	}
	// PlainID has no users: a userId cannot name a client.
	if err := v.CheckRef(vendors.Ref{ID: "P1"}); err != nil {
		t.Errorf("CheckRef(id) = %v", err)
	}
	if err := v.CheckRef(vendors.Ref{ID: "P1", UserID: "u-1"}); !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "spec.userId") {
		t.Errorf("CheckRef(id, userId) = %v, want InvalidSpec naming spec.userId", err)
	}
	if v.Selected(&v1alpha1.CredentialProviderSpec{Tines: &v1alpha1.TinesProvider{}}) {
		t.Error("selected for a tines spec")
	}
	ref := v.SecretRef(spec)
	if ref.Name != "plainid-admin" || strings.Join(ref.Keys, ",") != "clientId,clientSecret" {
		t.Errorf("secret ref = %+v", ref)
	}
	reg := vendors.NewRegistry(v)
	c, err := reg.NewClient("test", false, &v, spec, map[string]string{ClientIDKey: "id", ClientSecretKey: "secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if base := c.(*Client).base; base != "https://api.us1.plainid.io" {
		t.Errorf("base = %q", base)
	}
}

// newTestClient builds a Client for the tenant at url through the registry.
func newTestClient(t *testing.T, url string, caBundle []byte, secret string) *Client {
	t.Helper()
	reg := vendors.NewRegistry(Vendor())
	reg.Timeout = 2 * time.Second
	reg.Destinations = vendortest.Loopback()
	spec := &v1alpha1.CredentialProviderSpec{
		PlainID:  &v1alpha1.PlainIDProvider{URL: url, ClientSecretRef: v1alpha1.SecretReference{Name: "s"}},
		CABundle: caBundle,
	}
	v := Vendor()
	c, err := reg.NewClient("test", false, &v, spec, map[string]string{ClientIDKey: "PADMIN", ClientSecretKey: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Client)
}

// handlerTenant serves h over HTTPS and returns a Client for it under prefix.
func handlerTenant(t *testing.T, prefix string, h http.HandlerFunc) *Client {
	t.Helper()
	srv := vendortest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return newTestClient(t, srv.URL+prefix, vendortest.CABundle(srv), "admin secret&=/")
}

func TestRequestShape(t *testing.T) {
	const tok = "tok-shape-0123456789"
	c := handlerTenant(t, "/tenant-a/", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.EscapedPath() {
		case "POST /tenant-a/api/1.0/api-key/token":
			checkTokenRequest(t, r)
			vendortest.JSON(w, 200, []byte(`{"access_token":"`+tok+`","token_type":"Bearer","expires_in":"3600"}`))
		case "GET /tenant-a/env-mgmt/1.0/api-key/clients/P%2FX%20Y":
			if got := r.Header.Get("Authorization"); got != "Bearer "+tok {
				t.Errorf("authorization = %q", got)
			}
			vendortest.JSON(w, 200, []byte(`{"id":"P/X Y","name":"n","tokenDuration":"P1DT2H","permission":"ADMIN"}`))
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.EscapedPath())
			http.NotFound(w, r)
		}
	})
	got, err := c.Get(context.Background(), vendors.Ref{ID: "P/X Y"})
	if err != nil {
		t.Fatal(err)
	}
	st := status(got)
	if got.Name != "n" || st.TokenDuration != "P1DT2H" || st.PlainID == nil || st.PlainID.Permission != "ADMIN" {
		t.Errorf("credential = %+v, status %+v", got, st)
	}
}

func checkTokenRequest(t *testing.T, r *http.Request) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("content type = %q", ct)
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		t.Errorf("accept = %q", a)
	}
	if err := r.ParseForm(); err != nil { // in the handler: no t.Fatal
		t.Errorf("parse form: %v", err)
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != "PADMIN" || f.Get("client_secret") != "admin secret&=/" {
		t.Errorf("form = %v", f)
	}
}

func TestTokenScrubbedFromAnswers(t *testing.T) {
	const tok = "tok-echo-canary-0123456789"
	c := handlerTenant(t, "", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			vendortest.JSON(w, 200, []byte(`{"access_token":"`+tok+`","expires_in":86400}`))
			return
		}
		echo := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch r.URL.Path {
		case "/env-mgmt/1.0/api-key/clients/P403":
			vendortest.JSON(w, 403, []byte(`{"name":"forbidden","message":"token `+echo+` may not read clients"}`))
		case "/env-mgmt/1.0/api-key/clients/PHTML":
			w.WriteHeader(502)
			_, _ = fmt.Fprintf(w, "<html><head><title>bad token %s</title></head></html>", echo)
		case "/env-mgmt/1.0/api-key/clients/PBROKEN":
			vendortest.JSON(w, 200, []byte(`{"id":"PBROKEN","name":"`+echo+`"`))
		default:
			vendortest.JSON(w, 200, []byte(`{"id":"PNAME","name":"`+echo+`","description":"`+echo+`"}`))
		}
	})
	for _, id := range []string{"P403", "PHTML", "PBROKEN", "PNAME"} {
		cred, err := c.Get(context.Background(), vendors.Ref{ID: id})
		text := fmt.Sprint(err)
		if cred != nil {
			b, _ := json.Marshal(cred)
			text += string(b)
		}
		if strings.Contains(text, tok) || strings.Contains(text, tok[:16]) {
			t.Errorf("%s: %s holds the token", id, text)
		}
	}
}

func TestTokenWithoutLifetimeReusedUntilRejected(t *testing.T) {
	var mu sync.Mutex
	issued, valid := 0, ""
	c := handlerTenant(t, "", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			issued++
			valid = fmt.Sprintf("tok-no-lifetime-%04d", issued)
			vendortest.JSON(w, 200, []byte(`{"access_token":"`+valid+`","token_type":"Bearer"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+valid {
			vendortest.JSON(w, 401, []byte(`{}`))
			return
		}
		vendortest.JSON(w, 200, []byte(`{"id":"P1"}`))
	})
	clock := clocktesting.NewFakeClock(time.Now())
	c.clock = clock
	for range 3 {
		if _, err := c.Get(context.Background(), vendors.Ref{ID: "P1"}); err != nil {
			t.Fatal(err)
		}
		clock.Step(10 * 365 * 24 * time.Hour)
	}
	mu.Lock()
	valid = "revoked"
	mu.Unlock()
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "P1"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if issued != 2 {
		t.Errorf("tokens issued = %d, want 2", issued)
	}
}

func TestTokenRefreshMargin(t *testing.T) {
	cases := []struct {
		lifetime, reusedAt, replacedAt time.Duration
	}{
		{86400 * time.Second, 86339 * time.Second, 86341 * time.Second}, // 60s margin
		{300 * time.Second, 269 * time.Second, 271 * time.Second},       // 10%: 30s
		{30 * time.Second, 26 * time.Second, 28 * time.Second},          // shorter than 60s: 3s
		{5 * time.Second, 4400 * time.Millisecond, 4600 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.lifetime.String(), func(t *testing.T) {
			srv := plainidtest.NewServer("PADMIN", "admin-secret")
			defer srv.Close()
			srv.Put(plainidtest.Sample("P1", "one"))
			srv.SetTokenLifetime(tc.lifetime)
			c := newTestClient(t, srv.URL, srv.CABundle(), "admin-secret")
			start := time.Now()
			clock := clocktesting.NewFakeClock(start)
			c.clock = clock
			for _, step := range []struct {
				at     time.Duration
				tokens int
			}{{0, 1}, {tc.reusedAt, 1}, {tc.replacedAt, 2}} {
				clock.SetTime(start.Add(step.at))
				if _, err := c.Get(context.Background(), vendors.Ref{ID: "P1"}); err != nil {
					t.Fatal(err)
				}
				if got := srv.TokensIssued(); got != step.tokens {
					t.Errorf("at %v: tokens issued = %d, want %d", step.at, got, step.tokens)
				}
			}
		})
	}
}

// status is the RemoteCredential status c gives.
func status(c *vendors.Credential) v1alpha1.RemoteCredentialStatus {
	var st v1alpha1.RemoteCredentialStatus
	c.ApplyTo(&st)
	return st
}

// parseClient is what Get does with a 2xx body, without HTTP.
func parseClient(body []byte, id string) (*vendors.Credential, error) {
	var b apiClient
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, err
	}
	return b.Credential(id)
}

const fuzzCanary = "fuzz-secret-canary-7Qx"

func FuzzParseClient(f *testing.F) {
	f.Add([]byte(`{"id":"PVNTYSTFE2L9R4OJ9YY5","ownerId":"b0e1f961-2061-4f83-8392-b5aa19fed0c1",`+
		`"ownerType":"ENVIRONMENT","name":"ci","description":"CI client","secret":null,`+
		`"tokenDuration":"PT1440M","permission":"ADMIN"}`), "PVNTYSTFE2L9R4OJ9YY5")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		cred, err := parseClient(body, id)
		checkParsed(t, cred, err)
		var obj map[string]json.RawMessage
		if bytes.Contains(body, []byte(fuzzCanary)) || strings.Contains(id, fuzzCanary) ||
			json.Unmarshal(body, &obj) != nil || obj == nil {
			return
		}
		// Whatever the answer, a secret or an unknown field must not come through.
		obj["secret"] = json.RawMessage(strconv.Quote(fuzzCanary))
		obj["clientSecret"] = json.RawMessage(`{"value":` + strconv.Quote(fuzzCanary) + `}`)
		withSecret, err := json.Marshal(obj)
		if err != nil {
			return
		}
		cred, err = parseClient(withSecret, id)
		checkParsed(t, cred, err)
		out, _ := json.Marshal(cred)
		if bytes.Contains(out, []byte(fuzzCanary)) || strings.Contains(fmt.Sprint(err), fuzzCanary) {
			t.Fatalf("secret came through: %s / %v", out, err)
		}
	})
}

func checkParsed(t *testing.T, cred *vendors.Credential, err error) {
	t.Helper()
	if err != nil {
		if cred != nil {
			t.Fatalf("credential %+v with error %v", cred, err)
		}
		return
	}
	if cred == nil {
		t.Fatal("no credential and no error")
	}
	st := status(cred)
	if st.PlainID == nil || st.Tines != nil || st.ElasticCloud != nil {
		t.Fatalf("credential = %+v gives status %+v without error; want PlainID status only", cred, st)
	}
	if st.PlainID.OwnerID == "-" {
		t.Errorf("ownerId \"-\" kept")
	}
	if st.TokenDuration != "" {
		if !isoDuration.MatchString(st.TokenDuration) {
			t.Errorf("tokenDuration %q kept", st.TokenDuration)
		}
	}
}
