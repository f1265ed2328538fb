package elasticcloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

const (
	fuzzAPIKey    = "essu_fuzz-api-key-canary"
	fuzzKeyCanary = "fuzz-key-field-canary-c0ffee"
)

func testClient(t testing.TB, rawURL string) *Client {
	t.Helper()
	caller, err := vendors.NewCaller(v1alpha1.VendorElasticCloud, nil, false, nil, time.Second, nil, fuzzAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	spec := &v1alpha1.CredentialProviderSpec{ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: rawURL}}
	c, err := newClient(vendors.Config{Spec: spec, Secret: map[string]string{v1alpha1.DefaultSecretKey: fuzzAPIKey}, Caller: caller})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Client)
}

func TestKeyURL(t *testing.T) {
	cases := []struct {
		base string
		ref  vendors.Ref
		want string
	}{
		{"", vendors.Ref{ID: "k1"}, "https://api.elastic-cloud.com/api/v1/users/auth/keys/k1"},
		{"https://ece.example.com:12443/", vendors.Ref{ID: "k1", UserID: "admin"}, "https://ece.example.com:12443/api/v1/users/admin/auth/keys/k1"},
		{"https://proxy.example.com/ece//", vendors.Ref{ID: "k1"}, "https://proxy.example.com/ece/api/v1/users/auth/keys/k1"},
		{"https://proxy.example.com/ece", vendors.Ref{ID: "a/b?c", UserID: "u#1"}, "https://proxy.example.com/ece/api/v1/users/u%231/auth/keys/a%2Fb%3Fc"},
	}
	for _, tc := range cases {
		got, err := testClient(t, tc.base).keyURL(tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("keyURL(%q, %+v) = %q, %v; want %q", tc.base, tc.ref, got, err, tc.want)
		}
	}
}

func TestParseError(t *testing.T) {
	header := http.Header{"X-Cloud-Error-Codes": {"api_keys.key_not_found"}}
	cases := []struct {
		name, body, code, message string
		header                    http.Header
	}{
		{"documented", `{"errors":[{"code":"api_keys.key_not_found","message":"gone","fields":[]}]}`, "api_keys.key_not_found", "gone", header},
		{"several", `{"errors":[{"code":"a","message":"one"},{"code":"","message":"two"},{"code":"c"}]}`, "a, c", "one; two", nil},
		// Bodies of another shape give no message: not Elastic's words.
		{"header only", `{"message":"proxy says no"}`, "api_keys.key_not_found", "", header},
		{"html", "<html><title>502 Bad Gateway</title></html>", "", "", nil},
		{"plain", "db_password=hunter2", "", "", nil},
		{"empty", "", "", "", nil},
		{"errors of strings", `{"errors":["plain"]}`, "", "", nil},
	}
	for _, tc := range cases {
		code, message := parseError(tc.header, []byte(tc.body))
		if code != tc.code || message != tc.message {
			t.Errorf("%s: parseError = %q, %q; want %q, %q", tc.name, code, message, tc.code, tc.message)
		}
	}
}

// FuzzParseAPIKey feeds arbitrary 2xx answers to the parser: it must never
// panic, must return a complete credential or an InvalidResponse error,
// and must never copy the answer's key field anywhere.
func FuzzParseAPIKey(f *testing.F) {
	f.Add([]byte(`{"id":"k1","user_id":"u1","organization_id":"123","description":"ci key","creation_date":"2025-01-01T00:00:00Z","expiration_date":"2025-04-01T00:00:00Z"}`))
	c := testClient(f, "")
	f.Fuzz(func(t *testing.T, body []byte) {
		parseOutput(t, c, body)
		withKey, ok := withKeyField(body)
		if !ok {
			return
		}
		if out := parseOutput(t, c, withKey); strings.Contains(out, fuzzKeyCanary) {
			t.Fatalf("output %q holds the key field of %s", out, withKey)
		}
	})
}

// status is the RemoteCredential status c gives.
func status(c *vendors.Credential) v1alpha1.RemoteCredentialStatus {
	var st v1alpha1.RemoteCredentialStatus
	c.ApplyTo(&st)
	return st
}

// parseOutput parses body as the answer for k1, checks the invariants and
// returns the credential as JSON, or the error text.
func parseOutput(t *testing.T, c *Client, body []byte) string {
	cred, err := vendors.DecodeCredential[apiKey](c.api.Caller, &vendors.Response{Status: http.StatusOK, Body: body}, "k1")
	if err != nil {
		if cred != nil || !errors.Is(err, vendors.ErrInvalidResponse) {
			t.Fatalf("DecodeCredential = %+v, %v; want nil and InvalidResponse", cred, err)
		}
		return err.Error()
	}
	st := status(cred)
	if cred.CreatedAt == nil || st.ElasticCloud == nil || cred.Name != cred.Description {
		t.Fatalf("incomplete credential %+v (status %+v)", cred, st)
	}
	if st.Tines != nil || st.PlainID != nil || st.TokenDuration != "" {
		t.Fatalf("credential %+v sets another vendor's status: %+v", cred, st)
	}
	out, err := json.Marshal(cred)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// withKeyField returns body, when a JSON object not already holding the
// canary in any field, with its key field set to the canary.
func withKeyField(body []byte) ([]byte, bool) {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil {
		return nil, false
	}
	if plain, err := json.Marshal(m); err != nil || bytes.Contains(plain, []byte(fuzzKeyCanary)) {
		return nil, false
	}
	m["key"] = fuzzKeyCanary
	out, err := json.Marshal(m)
	return out, err == nil
}

// FuzzParseErrorBody feeds arbitrary error answers and x-cloud-error-codes
// values to the error parser and the Caller: no panic, the status's class,
// a bounded message, and never the API key.
func FuzzParseErrorBody(f *testing.F) {
	f.Add([]byte(`{"errors":[{"code":"api_keys.key_not_found","message":"The API key can't be found","fields":[]}]}`), "api_keys.key_not_found")
	c := testClient(f, "")
	f.Fuzz(func(t *testing.T, body []byte, codes string) {
		header := http.Header{}
		if codes != "" {
			header.Set("X-Cloud-Error-Codes", codes)
		}
		code, message := parseError(header, body)
		resp := &vendors.Response{Status: http.StatusNotFound, Header: header, Body: body}
		err := c.api.Caller.Fail(resp, code, message)
		if !errors.Is(err, vendors.ErrNotFound) {
			t.Fatalf("err = %v, want NotFound", err)
		}
		text := err.Error()
		if strings.Contains(text, fuzzAPIKey) {
			t.Fatalf("error %q holds the API key", text)
		}
		if len([]rune(text)) > 600 {
			t.Fatalf("error is %d runes long", len([]rune(text)))
		}
		// A body that is not Elastic's errors[] shape gives no message.
		var reply errorReply
		if json.Unmarshal(body, &reply) != nil && message != "" {
			t.Fatalf("parseError(%q) = message %q; want none for a body of another shape", body, message)
		}
		// A 5xx answer is its status alone, whatever its body and header.
		resp.Status = http.StatusBadGateway
		if err := c.api.Caller.Fail(resp, code, message); err.Error() != "HTTP 502 Bad Gateway" {
			t.Fatalf("5xx error = %q; want the status alone", err)
		}
	})
}
