package tines

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	fuzzAPIKey = "tines-fuzz-api-key-canary-2b7d"
	// fuzzCanary stands for the secrets a Tines answer may carry in fields
	// credsync does not map: a credential's value, free-form metadata,
	// anything the vendor adds.
	fuzzCanary = "tines-fuzz-secret-canary-9e4a"
)

// testClient is a Client for the tenant at rawURL, whose Caller trusts
// caBundle and redacts fuzzAPIKey.
func testClient(t testing.TB, rawURL string, caBundle []byte) *Client {
	t.Helper()
	caller, err := vendors.NewCaller(v1alpha1.VendorTines, vendortest.Loopback(), false, caBundle, 5*time.Second, nil, fuzzAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	spec := &v1alpha1.CredentialProviderSpec{Tines: &v1alpha1.TinesProvider{URL: rawURL}}
	c, err := newClient(vendors.Config{Spec: spec, Secret: map[string]string{v1alpha1.DefaultSecretKey: fuzzAPIKey}, Caller: caller})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Client)
}

// status is the RemoteCredential status c gives.
func status(c *vendors.Credential) v1alpha1.RemoteCredentialStatus {
	var st v1alpha1.RemoteCredentialStatus
	c.ApplyTo(&st)
	return st
}

// parse is what Get does with a 2xx answer.
func parse(c *Client, body []byte, id string) (*vendors.Credential, error) {
	return vendors.DecodeCredential[credential](c.api.Caller, &vendors.Response{Status: http.StatusOK, Body: body}, id)
}

// FuzzParseCredential feeds arbitrary 2xx answers to the parser. It must
// never panic; it returns a credential with Tines status, or an
// InvalidResponse error whose text is bounded; it accepts an answer for
// one credential id at most; and fields it does not map (value, secret,
// metadata, the owner's other fields) neither come out nor change the
// outcome.
func FuzzParseCredential(f *testing.F) {
	f.Add([]byte(`{"id":1,"name":"tines_github_credential","mode":"TEXT","team_id":2,"folder_id":1,`+
		`"read_access":"TEAM","shared_team_slugs":[],"slug":"tines_github_credential",`+
		`"created_at":"2021-03-26T12:34:16.540Z","updated_at":"2021-03-26T12:34:16.540Z",`+
		`"description":"","allowed_hosts":[],"metadata":{},"restriction_type":"UNRESTRICTED",`+
		`"test_credential_enabled":false,"expires_at":null,`+
		`"owner":{"user_id":1,"first_name":"Jane","last_name":"Doe","email":"jane@example.com"}}`), "1")
	c := testClient(f, "https://tenant.tines.com", nil)
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		cred, err := parse(c, body, id)
		checkParsed(t, body, id, cred, err)
		if err == nil {
			// An answer is for one credential: any other id is refused.
			if other, err := parse(c, body, id+"0"); err == nil {
				t.Fatalf("answer %s accepted for %q and for %q: %+v", body, id, id+"0", other)
			}
		}

		withSecrets, plain, ok := addSecrets(body)
		if !ok {
			return
		}
		want, wantErr := parse(c, plain, id)
		got, gotErr := parse(c, withSecrets, id)
		checkParsed(t, withSecrets, id, got, gotErr)
		if out := outcome(t, got, gotErr); strings.Contains(out, fuzzCanary) {
			t.Fatalf("answer %s: result %s holds a secret", withSecrets, out)
		}
		if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) ||
			gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("unmapped fields changed the outcome:\n%s: %s\n%s: %s",
				plain, outcome(t, want, wantErr), withSecrets, outcome(t, got, gotErr))
		}
	})
}

// checkParsed checks what holds for any answer.
func checkParsed(t *testing.T, body []byte, id string, cred *vendors.Credential, err error) {
	t.Helper()
	if err != nil {
		if cred != nil || !errors.Is(err, vendors.ErrInvalidResponse) {
			t.Fatalf("answer %s: %+v, %v; want nil and InvalidResponse", body, cred, err)
		}
		if n := utf8.RuneCountInString(err.Error()); n > 300 {
			t.Fatalf("answer %s: error is %d runes long", body, n)
		}
		if strings.ContainsFunc(err.Error(), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("answer %s: error %q holds a control character", body, err)
		}
		return
	}
	if cred == nil {
		t.Fatalf("answer %s: no credential and no error", body)
	}
	if st := status(cred); st.Tines == nil || st.PlainID != nil || st.ElasticCloud != nil || st.TokenDuration != "" {
		t.Fatalf("answer %s: credential %+v gives status %+v without error; want Tines status only", body, cred, st)
	}
	// The id matched: it is a JSON number, as Tines' ids are.
	var n json.Number
	if id == "" || json.Unmarshal([]byte(id), &n) != nil || n.String() != id {
		t.Fatalf("answer %s accepted for id %q, which is not a JSON number", body, id)
	}
	for _, ts := range []*time.Time{cred.CreatedAt, cred.UpdatedAt, cred.ExpiresAt} {
		if ts != nil && ts.IsZero() {
			t.Fatalf("answer %s: zero time mapped in %+v", body, cred)
		}
	}
}

// addSecrets returns body, when it is a JSON object, with secrets put in
// every field credsync must not read, and body re-encoded the same way
// without them. ok is false when body is not an object or already holds
// the canary.
func addSecrets(body []byte) (withSecrets, plain []byte, ok bool) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&m) != nil || m == nil || d.More() || bytes.Contains(body, []byte(fuzzCanary)) {
		return nil, nil, false
	}
	plain, err := json.Marshal(m)
	if err != nil {
		return nil, nil, false
	}
	m["value"] = fuzzCanary
	m["secret"] = fuzzCanary
	m["metadata"] = map[string]any{"token": fuzzCanary, "password": fuzzCanary}
	m["allowed_hosts"] = []any{fuzzCanary}
	m["shared_team_slugs"] = []any{fuzzCanary}
	if owner, isObject := m["owner"].(map[string]any); isObject {
		owner["first_name"], owner["last_name"], owner["api_key"] = fuzzCanary, fuzzCanary, fuzzCanary
	}
	withSecrets, err = json.Marshal(m)
	return withSecrets, plain, err == nil
}

// outcome is the credential as JSON, or the error text.
func outcome(t *testing.T, cred *vendors.Credential, err error) string {
	t.Helper()
	if err != nil {
		return err.Error()
	}
	b, err := json.Marshal(cred)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// answer is what the fuzzed tenant serves next.
type answer struct {
	status     int
	retryAfter string
	body       []byte
}

// FuzzErrorAnswer serves arbitrary non-2xx answers to Get over HTTPS. Tines'
// error bodies vary by endpoint, so the class comes from the status alone;
// the message is clean and bounded, Retry-After is honoured and capped,
// and the API key never comes out, even when the body echoes it.
func FuzzErrorAnswer(f *testing.F) {
	for _, seed := range []answer{
		{401, "", []byte(`{"error":"You need to sign in or sign up before continuing."}`)},
		{403, "", []byte(`{"errors":[{"message":"You do not have permission to access this credential"}]}`)},
		{404, "", []byte(`{"errors":[{"message":"Couldn't find UserCredential with 'id'=1"}]}`)},
		{429, "30", []byte("Retry later\n")},
		{502, "", []byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>\r\n</html>\r\n")},
		{500, "", []byte(`[{"message":"Something went wrong"}]`)},
		{401, "", []byte(`{"error":"Invalid token ` + fuzzAPIKey + `"}`)},
	} {
		f.Add(seed.status, seed.retryAfter, seed.body)
	}
	var (
		mu   sync.Mutex
		next answer
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		a := next
		mu.Unlock()
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	f.Cleanup(srv.Close)
	c := testClient(f, srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		status = 400 + int(uint(status)%200)
		retryAfter = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r == utf8.RuneError {
				return -1 // not a header value net/http sends
			}
			return r
		}, retryAfter)
		mu.Lock()
		next = answer{status, retryAfter, body}
		mu.Unlock()

		cred, err := c.Get(context.Background(), vendors.Ref{ID: "1"})
		var e *vendors.Error
		if cred != nil || !errors.As(err, &e) || e.Status != status || !errors.Is(err, vendors.ClassForStatus(status)) {
			t.Fatalf("HTTP %d %q: Get = %+v, %#v; want an *Error of class %v", status, body, cred, err, vendors.ClassForStatus(status))
		}
		if e.Code != "" {
			t.Fatalf("HTTP %d %q: code %q; Tines has no error codes", status, body, e.Code)
		}
		// Tines' error bodies are undocumented: the status alone, nothing
		// of the body.
		if e.Message != "" {
			t.Fatalf("HTTP %d %q: message %q; want the status alone", status, body, e.Message)
		}
		if n := utf8.RuneCountInString(e.Message); n > 257 || n == 257 && !strings.HasSuffix(e.Message, "…") {
			t.Fatalf("HTTP %d %q: message is %d runes long", status, body, n)
		}
		if strings.ContainsFunc(e.Message, func(r rune) bool { return r < 0x20 || r == 0x7f }) || strings.Contains(e.Message, "  ") {
			t.Fatalf("HTTP %d %q: message %q holds control characters or runs of space", status, body, e.Message)
		}
		if e.RetryAfter < 0 || e.RetryAfter > 24*time.Hour {
			t.Fatalf("Retry-After %q: waits %v", retryAfter, e.RetryAfter)
		}
		if d, ok := vendors.ParseRetryAfter(retryAfter, time.Now()); ok && (d-e.RetryAfter).Abs() > 5*time.Second {
			t.Fatalf("Retry-After %q: waits %v, want about %v", retryAfter, e.RetryAfter, d)
		}
		if strings.Contains(err.Error(), fuzzAPIKey) {
			t.Fatalf("HTTP %d %q: error %q holds the API key", status, body, err)
		}
	})
}
