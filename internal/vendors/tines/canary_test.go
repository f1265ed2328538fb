package tines_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
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
	calls := []struct {
		name, key string
		call      func() error
		anyOK     bool // any 2xx answer is a success: the body is not read
	}{
		{"get", "1", func() error { _, err := c.Get(context.Background(), vendors.Ref{ID: "1"}); return err }, false},
		{"list", tinestest.ListID, func() error { _, err := c.ListPage(context.Background(), nil, ""); return err }, false},
		{"verify", tinestest.ListID, func() error { return c.Verify(context.Background()) }, true},
	}
	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"message": m}}})
		return string(b)
	}
	faults := append(vendortest.CanaryFaults(documented),
		vendortest.CanaryFault{Name: "401 sign-in shape", Fault: vendortest.Fault{Status: 401, ContentType: "application/json", Body: `{"error":"` + vendortest.Canary + `"}`}},
		vendortest.CanaryFault{Name: "404 documented-looking", Fault: vendortest.Fault{Status: 404, ContentType: "application/json", Body: documented(vendortest.Canary)}},
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
			c := clientAt(t, tc.url+"/", tc.caBundle, apiKey, time.Second)
			_, err = c.Get(context.Background(), vendors.Ref{ID: "1"})
			vendortest.WantTransportClass(t, err, tc.class, u.Port(), apiKey)
			vendortest.WantTransportClass(t, c.Verify(context.Background()), tc.class, u.Port(), apiKey)
		})
	}
}
