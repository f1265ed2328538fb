package plainid_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/plainid"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// The fault matrix's canary rows: a canary in a 5xx answer (even in
// PlainID's documented shape or OAuth's), in a 4xx body of another shape,
// or in a 2xx answer that is not the documented JSON comes back in no
// error, from the token endpoint as from the API; the status does.
func TestCanaryNotReflected(t *testing.T) {
	srv := listServer(t)
	srv.Put(plainidtest.Sample(clientID, "ci"))
	c := newClient(t, srv, adminSecret, time.Second)
	inv := owners(listEnv)
	calls := []struct {
		name, key string
		call      func() error
	}{
		{"get", clientID, func() error { _, err := get(c, clientID); return err }},
		{"list", plainidtest.ListID(listEnv), func() error { _, err := listPage(c, inv, ""); return err }},
		// A new client for each token call: the token of the last one
		// would be reused.
		{"token", plainidtest.TokenEndpoint, func() error { _, err := get(newClient(t, srv, adminSecret, time.Second), clientID); return err }},
		{"verify", plainidtest.TokenEndpoint, func() error { return newClient(t, srv, adminSecret, time.Second).Verify(context.Background()) }},
	}
	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"id": "EW00XA", "status": 500, "name": "internalServerError", "message": m})
		return string(b)
	}
	oauth := func(m string) string {
		b, _ := json.Marshal(map[string]string{"error": "server_error", "error_description": m})
		return string(b)
	}
	faults := append(vendortest.CanaryFaults(documented),
		vendortest.CanaryFault{Name: "500 OAuth shape", Fault: vendortest.Fault{Status: 500, ContentType: "application/json", Body: oauth(vendortest.Canary)}},
		vendortest.CanaryFault{Name: "503 documented name", Fault: vendortest.Fault{Status: 503, ContentType: "application/json",
			Body: `{"name":"` + vendortest.Canary + `","error":"` + vendortest.Canary + `"}`}},
	)
	for _, call := range calls {
		for _, f := range faults {
			t.Run(call.name+" "+f.Name, func(t *testing.T) {
				srv.Set(call.key, f.Fault)
				defer srv.Clear(call.key)
				vendortest.WantNoCanary(t, call.call(), f.Fault.Status)
			})
		}
	}
	// Each ends with the class of its status.
	srv.Set(clientID, vendortest.Fault{Status: 502, ContentType: "text/html", Body: "<title>" + vendortest.Canary + "</title>"})
	if _, err := get(c, clientID); !errors.Is(err, vendors.ErrUnavailable) {
		t.Errorf("502: err = %v, want VendorUnavailable", err)
	}
	srv.Clear(clientID)
}

// A certificate's names and a closed port come back as fixed classes, at
// the token request.
func TestCanaryTransport(t *testing.T) {
	untrusted := vendortest.NewCanaryTLSServer(t, true)
	defer untrusted.Close()
	wrongName := vendortest.NewCanaryTLSServer(t, false)
	defer wrongName.Close()
	closed, _ := vendortest.ClosedURL(t)
	cases := []struct {
		name, url string
		caBundle  []byte
		class     string
	}{
		{"certificate of unknown authority", untrusted.URL, nil, "TLS verification failed"},
		{"trusted certificate for other names", wrongName.URL, vendortest.CABundle(wrongName), "TLS verification failed"},
		{"closed port", closed, nil, "connection failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			spec := &v1alpha1.CredentialProviderSpec{
				PlainID:  &v1alpha1.PlainIDProvider{URL: tc.url, ClientSecretRef: v1alpha1.SecretReference{Name: "s"}},
				CABundle: tc.caBundle,
			}
			c, err := vendortest.NewClient(plainid.Vendor(), spec, map[string]string{plainid.ClientIDKey: adminID, plainid.ClientSecretKey: adminSecret}, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = get(c, clientID)
			vendortest.WantTransportClass(t, err, tc.class, u.Port(), adminSecret)
			vendortest.WantTransportClass(t, c.Verify(context.Background()), tc.class, u.Port(), adminSecret)
		})
	}
}
