package elasticcloud_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
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
	calls := []struct {
		name, key string
		call      func() error
		anyOK     bool // any 2xx answer is a success: the body is not read
	}{
		{"get", "k1", func() error { _, err := c.Get(context.Background(), vendors.Ref{ID: "k1"}); return err }, false},
		{"list", elastictest.ListID, func() error { _, err := c.ListPage(context.Background(), allUsers(false), ""); return err }, false},
		{"verify", elastictest.ListID, func() error { return c.Verify(context.Background()) }, true},
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
	for _, call := range calls {
		for _, f := range faults {
			t.Run(call.name+" "+f.Name, func(t *testing.T) {
				srv.Set(call.key, f.Fault)
				defer srv.Clear(call.key)
				err := call.call()
				if call.anyOK && f.Fault.Status < 300 && err == nil {
					return
				}
				vendortest.WantNoCanary(t, err, f.Fault.Status)
				if f.Fault.Status >= 400 {
					if want := vendors.ClassForStatus(f.Fault.Status); !errors.Is(err, want) {
						t.Errorf("err %v: want class %v", err, want)
					}
				}
				assertNoSecret(t, err)
			})
		}
	}
}

// A certificate's names and a closed port come back as fixed classes.
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
				ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: tc.url, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "s"}},
				CABundle:     tc.caBundle,
			}
			c, err := clientFor(t, spec, apiKey, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Get(context.Background(), vendors.Ref{ID: "k1"})
			vendortest.WantTransportClass(t, err, tc.class, u.Port(), apiKey)
			vendortest.WantTransportClass(t, c.Verify(context.Background()), tc.class, u.Port(), apiKey)
		})
	}
}
