package elasticcloud_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// The fault matrix's canary rows: a canary in a 5xx answer (even in
// Elastic's documented shape, or in its x-cloud-error-codes header), in a
// 4xx body of another shape, or in a 2xx answer that is not the documented
// JSON comes back in no error; the status does.
func TestCanaryNotReflected(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, apiKey, time.Second)
	calls := []vendortest.CanaryCall{
		{Name: "get", Key: "k1", Call: func() error { _, err := c.Get(context.Background(), vendors.Ref{ID: "k1"}); return err }},
		{Name: "list", Key: elastictest.ListID, Call: func() error { _, err := c.ListPage(context.Background(), allUsers(false), ""); return err }},
		{Name: "verify", Key: elastictest.ListID, Call: func() error { return c.Verify(context.Background()) }, AnyOK: true},
	}
	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"errors": []map[string]any{{"code": "root.unexpected_error", "message": m, "fields": []string{}}}})
		return string(b)
	}
	codeHeader := http.Header{"X-Cloud-Error-Codes": {vendortest.Canary}}
	faults := append(vendortest.CanaryFaults(documented),
		vendortest.CanaryFault{Name: "503 code header", Fault: vendortest.Fault{Status: 503, ContentType: "text/plain", Body: "upstream", Header: codeHeader}},
		vendortest.CanaryFault{Name: "500 documented code", Fault: vendortest.Fault{Status: 500, ContentType: "application/json",
			Body: `{"errors":[{"code":"` + vendortest.Canary + `","message":"x"}]}`, Header: codeHeader}},
		vendortest.CanaryFault{Name: "404 errors of strings", Fault: vendortest.Fault{Status: 404, ContentType: "application/json", Body: `{"errors":["` + vendortest.Canary + `"]}`}},
		vendortest.CanaryFault{Name: "403 message only", Fault: vendortest.Fault{Status: 403, ContentType: "application/json", Body: `{"message":"` + vendortest.Canary + `"}`}},
	)
	vendortest.CheckCanaries(t, srv, calls, faults, func(t *testing.T, err error) { assertNoSecret(t, err) })
}

// A certificate's names and a closed port come back as fixed classes.
func TestCanaryTransport(t *testing.T) {
	vendortest.CheckTransport(t, apiKey, func(t *testing.T, url string, caBundle []byte) []error {
		spec := &v1alpha1.CredentialProviderSpec{
			ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: url, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "s"}},
			CABundle:     caBundle,
		}
		c, err := clientFor(t, spec, apiKey, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(context.Background(), vendors.Ref{ID: "k1"})
		return []error{err, c.Verify(context.Background())}
	})
}
