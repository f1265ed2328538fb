package controllers_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// vendorCanary is written into every vendor answer's secret field (Tines
// metadata, PlainID secret, Elastic key): it must never reach anything.
const vendorCanary = "vendor-secret-field-canary-61f7"

// harness drives one vendor's fake the same way for every vendor, so each
// scenario runs against all of them.
type harness struct {
	vendor    string
	fake      *vendortest.Scenarios
	provider  func(t *testing.T, ns string) // Secret and CredentialProvider named after the vendor
	put       func(id string, expiresAt *time.Time)
	canStore  bool // the vendor reports expiry
	secretVal string
}

func harnesses() []harness {
	return []harness{
		{
			vendor: v1alpha1.VendorTines, fake: &tinesFake.Scenarios, canStore: true, secretVal: tinesKey,
			provider: func(t *testing.T, ns string) {
				create(t, apiKeySecret(ns, "tines-api", tinesKey))
				create(t, &v1alpha1.CredentialProvider{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.VendorTines},
					Spec:       tinesSpec("tines-api"),
				})
				waitProviderValid(t, ns, v1alpha1.VendorTines)
			},
			put: func(id string, exp *time.Time) {
				n, _ := strconv.ParseInt(id, 10, 64)
				c := tinestest.Sample(n, "cred-"+id)
				c.ExpiresAt = exp
				c.Metadata = map[string]string{"password": vendorCanary}
				tinesFake.Put(c)
			},
		},
		{
			vendor: v1alpha1.VendorPlainID, fake: &plainFake.Scenarios, secretVal: plainSecret,
			provider: func(t *testing.T, ns string) { plainProvider(t, ns, v1alpha1.VendorPlainID) },
			put: func(id string, _ *time.Time) {
				c := plainidtest.Sample(id, "client-"+id)
				secret := vendorCanary
				c.Secret = &secret
				plainFake.Put(c)
			},
		},
		{
			vendor: v1alpha1.VendorElasticCloud, fake: &elastic.Scenarios, canStore: true, secretVal: elasticKey,
			provider: func(t *testing.T, ns string) { elasticProvider(t, ns, "elasticcloud") },
			put: func(id string, exp *time.Time) {
				k := elastictest.Sample(id, elasticUser, "key "+id)
				k.ExpirationDate = exp
				key := vendorCanary
				k.Key = &key
				elastic.Put(k)
			},
		},
	}
}

func plainProvider(t *testing.T, ns, name string) {
	t.Helper()
	create(t, testenv.ProviderSecret(ns, name+"-admin", map[string]string{"clientId": plainClientID, "clientSecret": plainSecret}))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CredentialProviderSpec{
			PlainID:  &v1alpha1.PlainIDProvider{URL: plainFake.URL, ClientSecretRef: v1alpha1.SecretReference{Name: name + "-admin"}},
			CABundle: plainFake.CABundle(),
		},
	})
	waitProviderValid(t, ns, name)
}

func elasticProvider(t *testing.T, ns, name string) {
	t.Helper()
	create(t, apiKeySecret(ns, name+"-api", elasticKey))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CredentialProviderSpec{
			ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: elastic.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: name + "-api"}},
			CABundle:     elastic.CABundle(),
		},
	})
	waitProviderValid(t, ns, name)
}

// credentialFor returns a RemoteCredential of the harness' provider.
func (h harness) credential(ns, name, id string) *v1alpha1.RemoteCredential {
	return newCredential(ns, name, id, func(rc *v1alpha1.RemoteCredential) { rc.Spec.ProviderRef.Name = strings.ToLower(h.vendor) })
}

func newVendorID() string { return strconv.FormatInt(fakeID(), 10) }
