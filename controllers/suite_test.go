package controllers_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/controllers"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/all"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	// clusterNS is the manager's --cluster-resource-namespace in tests.
	clusterNS = "credsync-test-system"
	tinesKey  = "tines-api-key-canary-5b1e"
	// PlainID: the admin client credsync authenticates as.
	plainClientID = "PVNTYSTFE2L9R4OJ9YY5"
	plainSecret   = "plainid-secret-canary-93c0"
	elasticKey    = "elastic-api-key-canary-e4d2"
	elasticUser   = "u-credsync"
	eventually    = 30 * time.Second
	// vendorTimeout bounds one vendor request in tests: long enough that a
	// fake's answer is not cut short on a machine busy compiling (make
	// test runs lint and the race build alongside), short enough for the
	// timeout cases to stay quick.
	vendorTimeout = 4 * time.Second
	// metricsLabel is the RemoteCredential label copied into metric labels.
	metricsLabel = "team"
	poll         = 100 * time.Millisecond
)

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8s       client.Client
	tinesFake *tinestest.Server
	plainFake *plainidtest.Server
	elastic   *elastictest.Server
	logs      syncBuffer
	// metricsURL is the manager's metrics endpoint (plain HTTP in tests).
	metricsURL string
	nsCounter  atomic.Int64
)

func TestMain(m *testing.M) {
	// The tests mostly wait on the control plane and the operator's
	// backoffs, not on the CPU: run them all at once, whatever GOMAXPROCS is.
	flag.Parse()
	if !parallelSet() {
		_ = flag.Set("test.parallel", "64")
	}
	os.Exit(run(m))
}

func parallelSet() bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	return set
}

func run(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(&logs), zap.UseDevMode(true), zap.Level(zapDebug())))
	var err error
	testEnv, cfg, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = testEnv.Stop() }()
	k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tinesFake = tinestest.NewServer(tinesKey)
	defer tinesFake.Close()
	plainFake = plainidtest.NewServer(plainClientID, plainSecret)
	defer plainFake.Close()
	elastic = elastictest.NewServer()
	elastic.AddAPIKey(elasticKey, elasticUser)
	defer elastic.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: clusterNS}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	metricsAddr, err := testenv.FreeAddr()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	metricsURL = "http://" + metricsAddr + "/metrics"
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		NewClient:              faultyStatusClient,
		HealthProbeBindAddress: "0",
		// Clocked tests' objects are their own managers' (clocked_test.go).
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.RemoteCredential{}:          {Label: ownedByShared()},
			&v1alpha1.CredentialProvider{}:        {Label: ownedByShared()},
			&v1alpha1.ClusterCredentialProvider{}: {Label: ownedByShared()},
		}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Registry:                 testRegistry(),
		ClusterResourceNamespace: clusterNS,
		MetricsLabelAllowlist:    []string{metricsLabel},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	return code
}

// testRegistry is every vendor, reachable on loopback (the fakes), with
// the tests' request timeout.
func testRegistry() *vendors.Registry {
	registry := all.Registry()
	registry.Destinations = vendortest.Loopback()
	registry.Timeout = vendorTimeout
	return registry
}

// apiFaultPrefix marks namespaces whose RemoteCredentials' status patches
// fail at first: conflicts and a server error, as an API server under
// pressure answers.
const apiFaultPrefix = "apifault-"

// apiFaults counts status patches per object in apiFaultPrefix namespaces.
var apiFaults sync.Map

// apiFaultSequence is how the first status patches of such an object fail.
var apiFaultSequence = []func(name string) error{
	func(name string) error {
		return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("remotecredentials").GroupResource(), name, errors.New("the object has been modified"))
	},
	func(string) error { return apierrors.NewInternalError(errors.New("etcdserver: request timed out")) },
}

// faultyStatusClient is the manager's client, with status patches of
// objects in apiFaultPrefix namespaces failing by apiFaultSequence.
func faultyStatusClient(config *rest.Config, options client.Options) (client.Client, error) {
	c, err := client.NewWithWatch(config, options)
	if err != nil {
		return nil, err
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if strings.HasPrefix(obj.GetNamespace(), apiFaultPrefix) {
				n, _ := apiFaults.LoadOrStore(client.ObjectKeyFromObject(obj), new(atomic.Int64))
				if i := int(n.(*atomic.Int64).Add(1)) - 1; i < len(apiFaultSequence) {
					return apiFaultSequence[i](obj.GetName())
				}
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}), nil
}

// newNamespace creates a namespace of the test's own.
func newNamespace(t *testing.T) string { return testenv.NewNamespace(t, k8s) }

func create(t *testing.T, obj client.Object) {
	t.Helper()
	labelClocked(obj)
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func apiKeySecret(ns, name, key string) *corev1.Secret {
	return testenv.ProviderSecret(ns, name, map[string]string{"apiKey": key})
}

func tinesSpec(secret string) v1alpha1.CredentialProviderSpec {
	return v1alpha1.CredentialProviderSpec{
		Tines:    &v1alpha1.TinesProvider{URL: tinesFake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: secret}},
		CABundle: tinesFake.CABundle(),
	}
}

// tinesProvider creates a Secret and a CredentialProvider named "tines" in ns.
func tinesProvider(t *testing.T, ns string) {
	t.Helper()
	create(t, apiKeySecret(ns, "tines-api", tinesKey))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"},
		Spec:       tinesSpec("tines-api"),
	})
	waitProviderValid(t, ns, "tines")
}

// waitProviderValid waits until the operator has checked the provider and
// found it usable: from then on its cache knows the provider, and a new
// credential's first reconcile cannot see it missing (ProviderNotReady
// followed by Recovered would make the events a test expects differ).
func waitProviderValid(t *testing.T, ns, name string) {
	t.Helper()
	provider := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	waitReady(t, provider, func() []metav1.Condition { return provider.Status.Conditions }, v1alpha1.ReasonValid, "")
}

// waitReady waits until obj, read again each time, has a Ready condition
// (among what conds returns of it) with reason (any, when "") and a
// message that holds text.
func waitReady(t *testing.T, obj client.Object, conds func() []metav1.Condition, reason, text string) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		get(g, obj)
		c := meta.FindStatusCondition(conds(), v1alpha1.ConditionReady)
		g.Expect(c).NotTo(gomega.BeNil(), "%s has no Ready condition", obj.GetName())
		if reason != "" {
			g.Expect(c.Reason).To(gomega.Equal(reason), "%s Ready: %s", obj.GetName(), c.Message)
		}
		g.Expect(c.Message).To(gomega.ContainSubstring(text))
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
}

// newCredential returns a RemoteCredential of provider "tines" for id.
func newCredential(ns, name, id string, mutate ...func(*v1alpha1.RemoteCredential)) *v1alpha1.RemoteCredential {
	rc := &v1alpha1.RemoteCredential{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.RemoteCredentialSpec{
			ProviderRef: v1alpha1.ProviderReference{Name: "tines"},
			ID:          id,
		},
	}
	for _, m := range mutate {
		m(rc)
	}
	return rc
}

// fakeID hands out vendor IDs unique across tests, so fault scenarios and
// call counts of parallel tests never mix.
var idCounter atomic.Int64

func fakeID() int64 { return 100000 + idCounter.Add(1) }

func get(g gomega.Gomega, obj client.Object) {
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)).To(gomega.Succeed())
}

// waitReason waits until the Ready condition has reason and returns the object.
func waitReason(t *testing.T, rc *v1alpha1.RemoteCredential, reason string) *v1alpha1.RemoteCredential {
	t.Helper()
	return waitReasonWithin(t, rc, reason, eventually)
}

// waitReasonWithin waits up to within until the Ready condition has reason
// for the object's current generation, and returns the object.
func waitReasonWithin(t *testing.T, rc *v1alpha1.RemoteCredential, reason string, within time.Duration) *v1alpha1.RemoteCredential {
	t.Helper()
	g := gomega.NewWithT(t)
	got := rc.DeepCopy()
	g.Eventually(func(g gomega.Gomega) { hasReason(g, got, reason) }).WithTimeout(within).WithPolling(poll).Should(gomega.Succeed())
	return got
}

// hasReason gets rc and checks that its Ready condition has reason, for
// its current generation.
func hasReason(g gomega.Gomega, rc *v1alpha1.RemoteCredential, reason string) {
	get(g, rc)
	c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady)
	g.Expect(c).NotTo(gomega.BeNil(), "%s has no Ready condition; its status: %+v", rc.Name, rc.Status)
	g.Expect(c.Reason).To(gomega.Equal(reason), "%s Ready: %s", rc.Name, c.Message)
	g.Expect(rc.Status.ObservedGeneration).To(gomega.Equal(rc.Generation))
}

func condition(obj *v1alpha1.RemoteCredential, typ string) *metav1.Condition {
	return meta.FindStatusCondition(obj.Status.Conditions, typ)
}

// kstatus computes what Flux's health check would say of obj.
func kstatus(t *testing.T, obj client.Object, gvk string) status.Status {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind(gvk)
	res, err := status.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}
