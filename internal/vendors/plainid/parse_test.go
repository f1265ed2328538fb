package plainid

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// Fuzz targets for PlainID's token answer and error bodies; the client
// answer has FuzzParseClient.

const (
	fuzzClientID     = "PFUZZADMINCLIENT0001"
	fuzzClientSecret = "plainid-fuzz-client-secret-4d8b"
	// fuzzToken stands for the access token of a token answer: no error
	// may quote it.
	fuzzToken = "plainid-fuzz-access-token-e0c3"
)

// fuzzTokenStart is when the fuzzed token requests were sent.
var fuzzTokenStart = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fuzzPlainIDClient is a Client whose Caller redacts the client id and
// secret, as the registry's does.
func fuzzPlainIDClient(t testing.TB) *Client {
	t.Helper()
	caller, err := vendors.NewCaller(v1alpha1.VendorPlainID, nil, false, nil, time.Second, nil, fuzzClientSecret, fuzzClientID)
	if err != nil {
		t.Fatal(err)
	}
	spec := &v1alpha1.CredentialProviderSpec{PlainID: &v1alpha1.PlainIDProvider{Region: "us1"}}
	c, err := newClient(vendors.Config{Spec: spec, Secret: map[string]string{ClientIDKey: fuzzClientID, ClientSecretKey: fuzzClientSecret}, Caller: caller})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Client)
}

// FuzzParseToken feeds arbitrary 2xx token answers to parseToken: no
// panic; either a token of at least minTokenLen to be replaced between
// the request and a year after it, or an InvalidResponse error that never
// quotes the access token; and expires_in, as a number or a quoted number,
// gives exactly the documented refresh time.
func FuzzParseToken(f *testing.F) {
	f.Add([]byte(`{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","token_type":"Bearer","expires_in":86400}`), int64(86400))
	c := fuzzPlainIDClient(f)
	f.Fuzz(func(t *testing.T, body []byte, expiresIn int64) {
		tok, err := c.parseToken(&vendors.Response{Status: http.StatusOK, Body: body}, fuzzTokenStart)
		checkToken(t, body, tok, err)

		// The access token, whatever the rest of the answer, is quoted by
		// no error.
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if d.Decode(&m) == nil && m != nil && !bytes.Contains(body, []byte(fuzzToken)) {
			m["access_token"] = fuzzToken
			if withToken, err := json.Marshal(m); err == nil {
				tok, err := c.parseToken(&vendors.Response{Status: http.StatusOK, Body: withToken}, fuzzTokenStart)
				checkToken(t, withToken, tok, err)
				if err != nil && strings.Contains(err.Error(), fuzzToken) {
					t.Fatalf("answer %s: error %q quotes the token", withToken, err)
				}
			}
		}

		// expires_in as an integer, quoted or not, and as a fraction.
		var lifetime time.Duration // negative: 0; over a year: a year
		switch {
		case expiresIn > int64(maxTokenLifetime/time.Second):
			lifetime = maxTokenLifetime
		case expiresIn > 0:
			lifetime = time.Duration(expiresIn) * time.Second
		}
		want := fuzzTokenStart.Add(lifetime - min(maxRefreshMargin, lifetime/10))
		n := strconv.FormatInt(expiresIn, 10)
		for _, v := range []string{n, strconv.Quote(n), n + ".0", n + "e0"} {
			body := []byte(`{"access_token":"` + fuzzToken + `","token_type":"Bearer","expires_in":` + v + `}`)
			tok, err := c.parseToken(&vendors.Response{Status: http.StatusOK, Body: body}, fuzzTokenStart)
			if err != nil || tok.value != fuzzToken || !tok.refreshAt.Equal(want) {
				t.Fatalf("answer %s: token %q refreshed at %v, %v; want %q at %v", body, tok.value, tok.refreshAt, err, fuzzToken, want)
			}
		}
	})
}

func checkToken(t *testing.T, body []byte, tok token, err error) {
	t.Helper()
	if err != nil {
		if tok != (token{}) || !errors.Is(err, vendors.ErrInvalidResponse) {
			t.Fatalf("answer %s: token %+v, error %v; want no token and InvalidResponse", body, tok, err)
		}
		return
	}
	if len(tok.value) < minTokenLen {
		t.Fatalf("answer %s: token %q is shorter than %d", body, tok.value, minTokenLen)
	}
	if !tok.refreshAt.IsZero() && (tok.refreshAt.Before(fuzzTokenStart) || tok.refreshAt.After(fuzzTokenStart.Add(maxTokenLifetime))) {
		t.Fatalf("answer %s: token refreshed at %v, not within a year of the request at %v", body, tok.refreshAt, fuzzTokenStart)
	}
	var a tokenAnswer
	if json.Unmarshal(body, &a) != nil || a.AccessToken != tok.value || (a.ExpiresIn == "") != tok.refreshAt.IsZero() {
		t.Fatalf("answer %s: token %+v is not the answer's", body, tok)
	}
}

// FuzzErrorBody feeds arbitrary error answers to the token request's and
// the client request's error handling. The class follows the status (bad
// client credentials on the token request are Unauthorized, as a 401 or a
// 400 with an OAuth code); code and message are clean and bounded and
// never hold the client id or secret; the documented PlainID and OAuth
// bodies give their code and message back.
func FuzzErrorBody(f *testing.F) {
	for _, seed := range []struct {
		status        int
		body          string
		code, message string
	}{
		{404, `{"id":"EW42XA","status":404,"name":"clientNotFoundError","message":"Client x not found"}`, "clientNotFoundError", "Client x not found"},
		{403, `{"id":"EW60XA","status":403,"name":"forbiddenEnvironment","message":"Forbidden","code":"EW60XA","args":{},"path":"/env-mgmt/1.0/api-key/clients/x"}`, "forbiddenEnvironment", "Forbidden"},
		{400, `{"error":"invalid_client","error_description":"Client authentication failed"}`, "invalid_client", "Client authentication failed"},
		{401, ``, "", ""},
		{502, "<html><head><title>502 Bad Gateway</title></head></html>", "", ""},
	} {
		f.Add(seed.status, []byte(seed.body), seed.code, seed.message)
	}
	c := fuzzPlainIDClient(f)
	f.Fuzz(func(t *testing.T, status int, body []byte, code, message string) {
		status = 400 + int(uint(status)%200)
		checkErrorBody(t, c, status, body)
		for _, secret := range []string{fuzzClientSecret, fuzzClientID} {
			i := len(body) / 2
			checkErrorBody(t, c, status, []byte(string(body[:i])+secret+string(body[i:])))
		}

		// The documented shapes give their code and message back.
		if !utf8.ValidString(code) || !utf8.ValidString(message) || code == "" && message == "" {
			return
		}
		q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		for _, shape := range []string{
			`{"id":"EW42XA","status":404,"name":` + q(code) + `,"message":` + q(message) + `}`,
			`{"error":` + q(code) + `,"error_description":` + q(message) + `}`,
			`{"code":` + q(code) + `,"message":` + q(message) + `,"args":{"x":1}}`,
		} {
			if gotCode, gotMessage := errorFields([]byte(shape)); gotCode != code || gotMessage != message {
				t.Fatalf("errorFields(%s) = %q, %q; want %q, %q", shape, gotCode, gotMessage, code, message)
			}
		}
		oauth := []byte(`{"error":"invalid_client","error_description":` + q(message) + `}`)
		if err := c.tokenFailure(&vendors.Response{Status: http.StatusBadRequest, Body: oauth}); !errors.Is(err, vendors.ErrUnauthorized) {
			t.Fatalf("token answer 400 %s: %v; want Unauthorized", oauth, err)
		}
	})
}

// checkErrorBody runs body through the token request's and the client
// request's error handling and checks both errors.
func checkErrorBody(t *testing.T, c *Client, status int, body []byte) {
	t.Helper()
	resp := &vendors.Response{Status: status, Header: http.Header{}, Body: body}
	code, message := errorFields(body)
	want := vendors.ClassForStatus(status)
	checkFailure(t, resp, c.caller.Fail(resp, code, message), want) // as Get does

	tokenErr := c.tokenFailure(resp)
	if status == http.StatusUnauthorized || status == http.StatusBadRequest && errors.Is(tokenErr, vendors.ErrUnauthorized) {
		want = vendors.ErrUnauthorized
	}
	checkFailure(t, resp, tokenErr, want)
}

func checkFailure(t *testing.T, resp *vendors.Response, err error, class error) {
	t.Helper()
	var e *vendors.Error
	if !errors.As(err, &e) || e.Status != resp.Status || e.Class != class {
		t.Fatalf("HTTP %d %q: %#v; want an *Error of class %v", resp.Status, resp.Body, err, class)
	}
	for what, s := range map[string]string{"code": e.Code, "message": e.Message} {
		if n := utf8.RuneCountInString(s); n > 257 || n == 257 && !strings.HasSuffix(s, "…") {
			t.Fatalf("HTTP %d %q: %s is %d runes long", resp.Status, resp.Body, what, n)
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) || strings.Contains(s, "  ") {
			t.Fatalf("HTTP %d %q: %s %q holds control characters or runs of space", resp.Status, resp.Body, what, s)
		}
	}
	if text := err.Error(); strings.Contains(text, fuzzClientSecret) || strings.Contains(text, fuzzClientID) {
		t.Fatalf("HTTP %d %q: error %q holds the client id or secret", resp.Status, resp.Body, text)
	}
	// A 5xx answer, or a body that is not JSON, is the status alone.
	if (resp.Status >= 500 || !json.Valid(resp.Body)) && (e.Code != "" || e.Message != "") {
		t.Fatalf("HTTP %d %q: code %q, message %q; want the status alone", resp.Status, resp.Body, e.Code, e.Message)
	}
}
