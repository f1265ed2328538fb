package tines_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// The fault matrix's canary rows: a canary in a 5xx body (JSON or not),
// in a 4xx body (Tines documents none), or in a 2xx answer that is not
// the documented JSON comes back in no error; the status does.
func TestCanaryNotReflected(t *testing.T) {
	srv := tinestest.NewServer(apiKey)
	defer srv.Close()
	srv.Put(tinestest.Sample(1, "one"))
	c := newClient(t, srv, apiKey, time.Second)
	calls := []vendortest.CanaryCall{
		{Name: "get", Key: "1", Call: func() error { _, err := c.Get(context.Background(), vendors.Ref{ID: "1"}); return err }},
		{Name: "list", Key: tinestest.ListID, Call: func() error { _, err := c.ListPage(context.Background(), nil, ""); return err }},
		{Name: "verify", Key: tinestest.ListID, Call: func() error { return c.Verify(context.Background()) }, AnyOK: true},
	}
	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"message": m}}})
		return string(b)
	}
	faults := append(vendortest.CanaryFaults(documented),
		vendortest.CanaryFault{Name: "401 sign-in shape", Fault: vendortest.Fault{Status: 401, ContentType: "application/json", Body: `{"error":"` + vendortest.Canary + `"}`}},
		vendortest.CanaryFault{Name: "404 documented-looking", Fault: vendortest.Fault{Status: 404, ContentType: "application/json", Body: documented(vendortest.Canary)}},
	)
	vendortest.CheckCanaries(t, srv, calls, faults, nil)
}

// A certificate's names and a closed port come back as fixed classes.
func TestCanaryTransport(t *testing.T) {
	vendortest.CheckTransport(t, apiKey, func(t *testing.T, url string, caBundle []byte) []error {
		c := clientAt(t, url+"/", caBundle, apiKey, time.Second)
		_, err := c.Get(context.Background(), vendors.Ref{ID: "1"})
		return []error{err, c.Verify(context.Background())}
	})
}
