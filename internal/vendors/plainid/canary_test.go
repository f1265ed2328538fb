package plainid_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/plainid"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// The fault matrix's canary rows: a canary in a 5xx answer (even in
// PlainID's documented shape or OAuth's), in a 4xx body of another shape,
// or in a 2xx answer that is not the documented JSON comes back in no
// error, from the token endpoint as from the API; the status and its
// class do.
func TestCanaryNotReflected(t *testing.T) {
	srv := listServer(t)
	srv.Put(plainidtest.Sample(clientID, "ci"))
	c := newClient(t, srv, adminSecret, time.Second)
	inv := owners(listEnv)
	// A new client for each token call: the token of the last one would
	// be reused.
	calls := []vendortest.CanaryCall{
		{Name: "get", Key: clientID, Call: func() error { _, err := get(c, clientID); return err }},
		{Name: "list", Key: plainidtest.ListID(listEnv), Call: func() error { _, err := listPage(c, inv, ""); return err }},
		{Name: "token", Key: plainidtest.TokenEndpoint, Call: func() error { _, err := get(newClient(t, srv, adminSecret, time.Second), clientID); return err }},
		{Name: "verify", Key: plainidtest.TokenEndpoint, Call: func() error { return newClient(t, srv, adminSecret, time.Second).Verify(context.Background()) }},
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
	vendortest.CheckCanaries(t, srv, calls, faults, nil)
}

// A certificate's names and a closed port come back as fixed classes, at
// the token request.
func TestCanaryTransport(t *testing.T) {
	vendortest.CheckTransport(t, adminSecret, func(t *testing.T, url string, caBundle []byte) []error {
		spec := &v1alpha1.CredentialProviderSpec{
			PlainID:  &v1alpha1.PlainIDProvider{URL: url, ClientSecretRef: v1alpha1.SecretReference{Name: "s"}},
			CABundle: caBundle,
		}
		c, err := vendortest.NewClient(plainid.Vendor(), spec, map[string]string{plainid.ClientIDKey: adminID, plainid.ClientSecretKey: adminSecret}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = get(c, clientID)
		return []error{err, c.Verify(context.Background())}
	})
}
