package plugin

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is the plugin's clock in these tests: relative times are stable.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

var (
	k8s client.Client
	// kubeconfig reaches a control plane with credsync's CRDs, bare one
	// without them.
	kubeconfig, bare string
	skipReason       string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, cfg, skip, err := testenv.StartForTests()
	if err != nil {
		return fail(err)
	}
	if skip != "" {
		skipReason = skip
		return m.Run()
	}
	defer func() { _ = env.Stop() }()
	bareEnv, _, err := testenv.StartBare()
	if err != nil {
		return fail(err)
	}
	defer func() { _ = bareEnv.Stop() }()
	dir, err := os.MkdirTemp("", "credsync-plugin-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	for path, e := range map[*string]*envtest.Environment{&kubeconfig: env, &bare: bareEnv} {
		sub := filepath.Join(dir, fmt.Sprint(len(*path), e.ControlPlane.APIServer.Port))
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return fail(err)
		}
		if *path, err = testenv.WriteKubeconfig(e, sub); err != nil {
			return fail(err)
		}
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme()}); err != nil {
		return fail(err)
	}
	return m.Run()
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 1
}

func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// result is what one plugin run printed and returned.
type result struct {
	out, err string
	code     int
}

// runs counts plugin runs: each sees the clock a millisecond later, as a
// person's runs do (sync requests differ).
var runs int

// runPlugin runs kubectl credsync args against kubeconfig, at t0.
func runPlugin(t *testing.T, config string, args ...string) result {
	t.Helper()
	runs++
	var out, errOut bytes.Buffer
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig = &config
	o := &Options{
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Flags:     flags, Clock: clocktesting.NewFakeClock(t0.Add(time.Duration(runs) * time.Millisecond)), Poll: 50 * time.Millisecond,
	}
	code := Run(newRoot(o), args, &errOut)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/plugin -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./internal/plugin -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

var nsCount int

// namespace creates a namespace of the test's own.
func namespace(t *testing.T) string {
	t.Helper()
	nsCount++
	ns := fmt.Sprintf("plugin-%d", nsCount)
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// credential creates a RemoteCredential in ns with the status the
// operator would have written, expiring at exp (none when zero).
func credential(t *testing.T, ns, name string, exp time.Time, mutate ...func(*v1alpha1.RemoteCredential)) *v1alpha1.RemoteCredential {
	t.Helper()
	rc := &v1alpha1.RemoteCredential{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.RemoteCredentialSpec{ProviderRef: v1alpha1.ProviderReference{Name: "tines-prod"}, ID: "4821"},
	}
	ctx := context.Background()
	if err := k8s.Create(ctx, rc); err != nil {
		t.Fatal(err)
	}
	rc.Status = v1alpha1.RemoteCredentialStatus{
		ObservedGeneration: rc.Generation, Vendor: "tines", Name: strings.ReplaceAll(name, "-", "_"), Owner: name + "@example.com",
		Tines: &v1alpha1.TinesCredentialStatus{Mode: "TEXT", OwnerEmail: name + "@example.com"},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSynced,
			Message: "tines credential 4821 synced", ObservedGeneration: rc.Generation, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}},
	}
	if !exp.IsZero() {
		rc.Status.ExpiresAt = ptr.To(metav1.NewTime(exp))
	}
	for _, m := range mutate {
		m(rc)
	}
	if err := k8s.Status().Update(ctx, rc); err != nil {
		t.Fatal(err)
	}
	return rc
}

func TestExpiring(t *testing.T) {
	requireEnv(t)
	ns := namespace(t)
	credential(t, ns, "github-token", t0.Add(200*24*time.Hour))
	credential(t, ns, "slack-webhook", t0.Add(9*24*time.Hour))
	credential(t, ns, "old-pagerduty-key", t0.Add(-3*24*time.Hour))
	credential(t, ns, "jira-service-account", time.Time{})
	credential(t, ns, "elastic-writer", t0.Add(20*24*time.Hour), func(rc *v1alpha1.RemoteCredential) {
		rc.Status.Vendor, rc.Status.Tines = "elasticCloud", nil
		rc.Status.ElasticCloud = &v1alpha1.ElasticCloudCredentialStatus{UserID: "credsync-bot"}
		rc.Status.Owner = "credsync-bot"
	})

	r := runPlugin(t, kubeconfig, "expiring", "-n", ns)
	if r.code != 1 || r.err != "1 credentials have expired\n" {
		t.Fatalf("exit %d, stderr %q: want 1 and the count of expired credentials", r.code, r.err)
	}
	golden(t, "expiring.txt", r.out)
	golden(t, "expiring.csv", strings.ReplaceAll(runPlugin(t, kubeconfig, "expiring", "-n", ns, "-o", "csv").out, ns, "NAMESPACE"))
	if r := runPlugin(t, kubeconfig, "expiring", "-n", ns, "--within", "400d"); !strings.Contains(r.out, "github-token") {
		t.Errorf("--within 400d left out a credential expiring in 200 days:\n%s", r.out)
	}
	if r := runPlugin(t, kubeconfig, "expiring", "-A", "--within", "1h"); !strings.Contains(strings.Join(strings.Fields(r.out), " "), ns+" old-pagerduty-key") || r.code != 1 {
		t.Errorf("-A: exit %d, want the namespace column:\n%s", r.code, r.out)
	}
	if r := runPlugin(t, kubeconfig, "expiring", "-n", ns, "--within", "soon"); r.code != ExitError || !strings.Contains(r.err, `"soon" is not a duration`) {
		t.Errorf("bad --within: exit %d, %q", r.code, r.err)
	}
	empty := namespace(t)
	if r := runPlugin(t, kubeconfig, "expiring", "-n", empty); r.code != 0 || r.out != "No credential expires within 30d.\n" {
		t.Errorf("nothing expiring: exit %d, %q", r.code, r.out)
	}
	// For jq: an empty list is [], not null.
	if r := runPlugin(t, kubeconfig, "expiring", "-n", empty, "-o", "json"); r.code != 0 || !strings.Contains(r.out, `"items": []`) ||
		!strings.Contains(r.out, `"kind": "List"`) {
		t.Errorf("nothing expiring, -o json: exit %d:\n%s", r.code, r.out)
	}
	if r := runPlugin(t, kubeconfig, "expiring", "-n", empty, "-o", "xml"); r.code != ExitError || r.err != "error: output format \"xml\": use one of json, yaml, kyaml\n" {
		t.Errorf("-o xml: exit %d, %q", r.code, r.err)
	}
}

func TestStatus(t *testing.T) {
	requireEnv(t)
	ns := namespace(t)
	credential(t, ns, "retired-key", t0.Add(5*24*time.Hour), func(rc *v1alpha1.RemoteCredential) {
		rc.Status.Conditions = []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNotFound, ObservedGeneration: rc.Generation,
				Message: "tines credential 4821: HTTP 404 Not Found: Couldn't find UserCredential", LastTransitionTime: metav1.NewTime(t0.Add(-2 * time.Hour))},
			{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonNotFound, ObservedGeneration: rc.Generation,
				Message: "tines credential 4821: HTTP 404 Not Found", LastTransitionTime: metav1.NewTime(t0.Add(-2 * time.Hour))},
		}
	})
	rc := &v1alpha1.RemoteCredential{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "retired-key"}, rc); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(context.Background(), &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "retired-key.1"}, EventTime: metav1.NewMicroTime(t0.Add(-2 * time.Hour)),
		ReportingController: "credsync", ReportingInstance: "credsync", Action: "Sync", Type: corev1.EventTypeWarning, Reason: "NotFound",
		Note:      "tines credential 4821: HTTP 404 Not Found",
		Regarding: corev1.ObjectReference{Kind: "RemoteCredential", Namespace: ns, Name: "retired-key", UID: rc.UID},
	}); err != nil {
		t.Fatal(err)
	}
	r := runPlugin(t, kubeconfig, "status", "retired-key", "-n", ns)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	golden(t, "status.txt", strings.ReplaceAll(r.out, ns, "NAMESPACE"))

	// As kubectl get -o yaml: with its kind, without managedFields.
	if r := runPlugin(t, kubeconfig, "status", "retired-key", "-n", ns, "-o", "yaml"); !strings.Contains(r.out, "kind: RemoteCredential\n") ||
		strings.Contains(r.out, "managedFields") {
		t.Errorf("-o yaml:\n%s", r.out)
	}
	if r := runPlugin(t, kubeconfig, "status", "nope", "-n", ns); r.code != ExitError || r.err != "error: RemoteCredential "+ns+"/nope not found\n" {
		t.Errorf("unknown name: exit %d, %q", r.code, r.err)
	}

	// Someone who may read credentials but not events gets the rest.
	ctx := context.Background()
	if err := k8s.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "credential-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"remotecredentials"}, Verbs: []string{"get"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "credential-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "credential-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "reader"}},
	}); err != nil {
		t.Fatal(err)
	}
	r = runPlugin(t, kubeconfig, "status", "retired-key", "-n", ns, "--as", "reader")
	if r.code != 0 || !strings.Contains(r.out, "Events:\n  not shown: you may not list events in namespace "+ns+"\n") ||
		!strings.Contains(r.out, "Ready is False") {
		t.Errorf("without access to events: exit %d, stderr %q:\n%s", r.code, r.err, r.out)
	}
}

// The operator is played here: a goroutine echoes each sync request. The
// end-to-end suite does it with the real operator.
func TestSyncWait(t *testing.T) {
	requireEnv(t)
	ns := namespace(t)
	credential(t, ns, "github-token", time.Time{})
	retired := credential(t, ns, "retired-key", time.Time{})
	labelled := retired.DeepCopy()
	labelled.Labels = map[string]string{"team": "a"}
	if err := k8s.Patch(context.Background(), labelled, client.MergeFrom(retired)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go playOperator(ctx, t, ns, map[string]metav1.Condition{
		"retired-key": {Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNotFound, Message: "HTTP 404"},
	})
	r := runPlugin(t, kubeconfig, "sync", "github-token", "-n", ns, "--wait", "--timeout", "20s")
	if r.code != 0 || r.out != ns+"/github-token: Ready (Synced): tines credential 4821 synced\n" {
		t.Fatalf("exit %d, out %q, err %q", r.code, r.out, r.err)
	}
	r = runPlugin(t, kubeconfig, "sync", "-l", "team=a", "-n", ns, "--wait", "--timeout", "20s")
	if r.code != 1 || r.out != ns+"/retired-key: not Ready (NotFound): HTTP 404\n" || r.err != "1 of 1 credentials are not Ready\n" {
		t.Fatalf("exit %d, out %q, err %q", r.code, r.out, r.err)
	}
	if r := runPlugin(t, kubeconfig, "sync", "-n", ns); r.code != ExitError || !strings.Contains(r.err, "name the credentials to sync") {
		t.Errorf("no names: exit %d, %q", r.code, r.err)
	}
	cancel()
	r = runPlugin(t, kubeconfig, "sync", "--all", "-n", ns, "--wait", "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.err, "2 of 2 credentials not synced within 1s") {
		t.Errorf("nobody syncing: exit %d, out %q, err %q", r.code, r.out, r.err)
	}
}

// playOperator echoes every new sync request of ns's credentials in
// status, with the Ready condition outcomes gives (Synced otherwise).
func playOperator(ctx context.Context, t *testing.T, ns string, outcomes map[string]metav1.Condition) {
	for ctx.Err() == nil {
		list := &v1alpha1.RemoteCredentialList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err == nil {
			for i := range list.Items {
				rc := &list.Items[i]
				req := rc.Annotations[v1alpha1.SyncRequestedAtAnnotation]
				if req == "" || rc.Status.LastHandledSyncRequest == req {
					continue
				}
				rc.Status.LastHandledSyncRequest = req
				if c, ok := outcomes[rc.Name]; ok {
					c.ObservedGeneration, c.LastTransitionTime = rc.Generation, metav1.NewTime(t0)
					rc.Status.Conditions = []metav1.Condition{c}
				}
				if err := k8s.Status().Update(ctx, rc); err != nil && ctx.Err() == nil {
					t.Logf("play operator: %v", err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestInventory(t *testing.T) {
	requireEnv(t)
	ns := namespace(t)
	p := &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines-prod"},
		Spec: v1alpha1.CredentialProviderSpec{
			Tines:     &v1alpha1.TinesProvider{URL: "https://acme.tines.com", APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "tines-api"}},
			Inventory: &v1alpha1.Inventory{Interval: metav1.Duration{Duration: 15 * time.Minute}},
		},
	}
	ctx := context.Background()
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Status = v1alpha1.CredentialProviderStatus{
		ObservedGeneration: p.Generation, Vendor: "tines",
		Inventory: &v1alpha1.InventoryStatus{Total: 6, Managed: 3, Unmanaged: 3, UnmanagedCredentials: []v1alpha1.UnmanagedCredential{
			{ID: "4950", Name: "old_jenkins_token", CreatedAt: ptr.To(metav1.NewTime(t0.Add(-400 * 24 * time.Hour))), ExpiresAt: ptr.To(metav1.NewTime(t0.Add(5 * 24 * time.Hour)))},
			{ID: "4951", Name: "aws_deploy_key", CreatedAt: ptr.To(metav1.NewTime(t0.Add(-30 * 24 * time.Hour))), ExpiresAt: ptr.To(metav1.NewTime(t0.Add(40 * 24 * time.Hour)))},
			{ID: "4952", Name: "datadog_api_key"},
		}},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionInventoried, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonListed,
			Message: "6 credentials: 3 managed, 3 unmanaged", ObservedGeneration: p.Generation, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}},
	}
	if err := k8s.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	r := runPlugin(t, kubeconfig, "inventory", "tines-prod", "-n", ns)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	golden(t, "inventory.txt", strings.ReplaceAll(r.out, ns, "NAMESPACE"))

	r = runPlugin(t, kubeconfig, "inventory", "tines-prod", "-n", ns, "--adopt", "-o", "yaml")
	if r.code != 0 {
		t.Fatalf("--adopt: exit %d: %s", r.code, r.err)
	}
	var list struct {
		Kind  string                      `json:"kind"`
		Items []v1alpha1.RemoteCredential `json:"items"`
	}
	if strings.Contains(r.out, "status:") || strings.Contains(r.out, "creationTimestamp") {
		t.Errorf("manifests to commit carry status or server fields:\n%s", r.out)
	}
	if err := yaml.Unmarshal([]byte(r.out), &list); err != nil {
		t.Fatalf("--adopt -o yaml: %v\n%s", err, r.out)
	}
	if list.Kind != "List" || len(list.Items) != 3 {
		t.Fatalf("--adopt: kind %q, %d items:\n%s", list.Kind, len(list.Items), r.out)
	}
	for _, rc := range list.Items {
		if rc.Name != "tines-prod-"+rc.Spec.ID || rc.Namespace != ns || rc.Labels[v1alpha1.AdoptedByLabel] != "tines-prod" {
			t.Errorf("adopted %s/%s %v", rc.Namespace, rc.Name, rc.Labels)
		}
		// What kubectl apply --dry-run=server would do.
		if err := k8s.Create(ctx, rc.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("the API server refuses %s: %v", rc.Name, err)
		}
	}
	if r.err != "" {
		t.Errorf("--adopt of every unmanaged credential: stderr %q", r.err)
	}
	// More unmanaged than the status keeps: the cut is said on stderr.
	p.Status.Inventory.Unmanaged, p.Status.Inventory.Total = 60, 63
	if err := k8s.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	r = runPlugin(t, kubeconfig, "inventory", "tines-prod", "-n", ns, "--adopt", "-o", "yaml")
	if r.code != 0 || !strings.HasPrefix(r.err, "warning: 3 of 60 unmanaged credentials printed") || strings.Count(r.out, "kind: RemoteCredential") != 3 {
		t.Errorf("--adopt past the status's list: exit %d, stderr %q", r.code, r.err)
	}
	if r := runPlugin(t, kubeconfig, "inventory", "tines-prod", "-n", ns, "--adopt"); r.code != ExitError || !strings.Contains(r.err, "-o yaml") {
		t.Errorf("--adopt without -o: exit %d, %q", r.code, r.err)
	}
	if r := runPlugin(t, kubeconfig, "inventory", "tines-prod", "--cluster"); r.code != ExitError || r.err != "error: ClusterCredentialProvider tines-prod not found\n" {
		t.Errorf("--cluster: exit %d, %q", r.code, r.err)
	}
}

func TestCheckAndVersion(t *testing.T) {
	requireEnv(t)
	r := runPlugin(t, kubeconfig, "check", "--operator-namespace", "no-operator-here")
	if r.code != 1 || !strings.Contains(r.out, "ok    CRD        remotecredentials.credsync.io: v1alpha1 served") ||
		!strings.Contains(r.out, "FAIL  operator   no Deployment labelled app.kubernetes.io/name=credsync in namespace no-operator-here") {
		t.Fatalf("no operator: exit %d:\n%s", r.code, r.out)
	}
	ns := namespace(t)
	ctx := context.Background()
	labels := map[string]string{"app.kubernetes.io/name": "credsync"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "credsync-manager", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "registry.example.com/credsync:v0.1.0"}}},
			},
		},
	}
	if err := k8s.Create(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	deploy.Status = appsv1.DeploymentStatus{Replicas: 1, AvailableReplicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1}
	if err := k8s.Status().Update(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "credsync.credsync.io"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("credsync-manager-7d9f_1a2b"), LeaseDurationSeconds: ptr.To[int32](15),
			RenewTime: ptr.To(metav1.NewMicroTime(t0.Add(-3 * time.Second)))},
	}); err != nil {
		t.Fatal(err)
	}
	r = runPlugin(t, kubeconfig, "check", "--operator-namespace", ns)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	golden(t, "check.txt", strings.ReplaceAll(r.out, ns, "NAMESPACE"))

	// A holder that stopped renewing an hour ago leads nothing.
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "credsync.credsync.io"}, lease); err != nil {
		t.Fatal(err)
	}
	lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(t0.Add(-time.Hour)))
	if err := k8s.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if r := runPlugin(t, kubeconfig, "check", "--operator-namespace", ns); r.code != 1 ||
		!strings.Contains(r.out, "FAIL  leader     Lease "+ns+"/credsync.credsync.io: credsync-manager-7d9f_1a2b stopped renewing it 60m ago: no replica leads now") {
		t.Errorf("a lapsed lease: exit %d:\n%s", r.code, r.out)
	}
	r = runPlugin(t, kubeconfig, "version", "--operator-namespace", ns)
	if r.code != 0 || r.out != "kubectl-credsync dev\noperator registry.example.com/credsync:v0.1.0 (Deployment "+ns+"/credsync-manager)\n" {
		t.Errorf("version: exit %d, %q", r.code, r.out)
	}
}

// Clear errors, no stack traces: credsync not installed, no cluster.
func TestErrors(t *testing.T) {
	requireEnv(t)
	want := "error: credsync is not installed in this cluster: the API server knows no credsync.io/v1alpha1 kinds " +
		"(install the CRDs: make deploy, or helm install credsync charts/credsync)\n"
	for _, args := range [][]string{{"status", "x"}, {"expiring", "-A"}, {"sync", "--all"}, {"inventory", "x"}} {
		if r := runPlugin(t, bare, args...); r.code != ExitError || r.err != want {
			t.Errorf("%v without the CRDs: exit %d, %q", args, r.code, r.err)
		}
	}
	if r := runPlugin(t, bare, "check"); r.code != 1 || !strings.Contains(r.out, "FAIL  CRD        remotecredentials.credsync.io: not installed not found") {
		t.Errorf("check without the CRDs: exit %d:\n%s", r.code, r.out)
	}
	dir := t.TempDir()
	unreachable := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team-a}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runPlugin(t, unreachable, "status", "x"); r.code != ExitError || !strings.HasPrefix(r.err, "error: cannot reach the cluster at https://127.0.0.1:1: ") ||
		strings.Contains(r.err, "goroutine") {
		t.Errorf("no cluster: exit %d, %q", r.code, r.err)
	}
	if r := runPlugin(t, kubeconfig, "frobnicate"); r.code != ExitError || !strings.Contains(r.err, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", r.code, r.err)
	}
}

// The embedded troubleshooting guide is docs/troubleshooting.md as it is.
func TestTroubleshootingCopyIsCurrent(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != troubleshooting {
		t.Fatal("internal/plugin/troubleshooting.md differs from docs/troubleshooting.md: run make generate")
	}
}

// Every reason a credential can fail with has a next step in the guide.
func TestNextStepForEveryFailingReason(t *testing.T) {
	for _, reason := range []string{v1alpha1.ReasonNotFound, v1alpha1.ReasonForbidden, v1alpha1.ReasonUnauthorized, v1alpha1.ReasonRateLimited,
		v1alpha1.ReasonVendorUnavailable, v1alpha1.ReasonInvalidResponse, v1alpha1.ReasonProviderNotReady, v1alpha1.ReasonProviderNotAllowed, v1alpha1.ReasonInvalidSpec, v1alpha1.ReasonExpired} {
		step := nextStep(reason)
		if guideSection(reason) == "" || !strings.HasSuffix(step, "#"+strings.ToLower(reason)) || len(strings.Split(step, "\n")) < 2 {
			t.Errorf("%s: no section in the guide, or no step:\n%s", reason, step)
		}
	}
}

// Help names the command as users type it: kubectl credsync.
func TestHelpNamesThePlugin(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"sync", "--help"}} {
		r := runPlugin(t, "/nonexistent", args...)
		if r.code != 0 || !strings.Contains(r.out, "Usage:\n  kubectl credsync ") || strings.Contains(r.out, "kubectl [command]") {
			t.Errorf("%v: exit %d, usage:\n%s", args, r.code, r.out)
		}
	}
}

func TestUnused(t *testing.T) {
	requireEnv(t)
	ns := namespace(t)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	gitlab := func(used *metav1.Time, neverUsed bool, created *metav1.Time) func(*v1alpha1.RemoteCredential) {
		return func(rc *v1alpha1.RemoteCredential) {
			rc.Status.Vendor, rc.Status.Tines, rc.Status.Owner = "gitlab", nil, "user 42"
			rc.Status.LastUsedAt, rc.Status.NeverUsed, rc.Status.CreatedAt = used, neverUsed, created
		}
	}
	credential(t, ns, "ci-deploy", time.Time{}, gitlab(at(-2*time.Hour), false, at(-400*24*time.Hour)))
	credential(t, ns, "old-export", time.Time{}, gitlab(at(-120*24*time.Hour), false, at(-400*24*time.Hour)))
	credential(t, ns, "never-touched", time.Time{}, gitlab(nil, true, at(-200*24*time.Hour)))
	credential(t, ns, "brand-new", time.Time{}, gitlab(nil, true, at(-24*time.Hour)))
	credential(t, ns, "tines-key", time.Time{}) // the vendor does not report use

	r := runPlugin(t, kubeconfig, "unused", "-n", ns)
	if r.code != 1 || r.err != "2 credentials went unused for 90d\n" {
		t.Fatalf("exit %d, stderr %q: want 1 and the count", r.code, r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "never-touched") || !strings.HasPrefix(lines[2], "old-export") ||
		!strings.Contains(lines[1], "never") || !strings.Contains(lines[1], "user 42") {
		t.Fatalf("want never-touched (200d) then old-export (120d), with owner:\n%s", r.out)
	}
	csv := runPlugin(t, kubeconfig, "unused", "-n", ns, "--for", "30d", "-o", "csv").out
	if n := strings.Count(csv, "\n"); n != 3 || !strings.Contains(csv, "old-export") {
		t.Errorf("--for 30d -o csv: want a header and 2 rows:\n%s", csv)
	}
	if r := runPlugin(t, kubeconfig, "unused", "-n", ns, "--for", "1h"); r.code != 1 || !strings.Contains(r.out, "ci-deploy") || strings.Contains(r.out, "tines-key") {
		t.Errorf("--for 1h: exit %d, want ci-deploy and no tines-key:\n%s", r.code, r.out)
	}
	if r := runPlugin(t, kubeconfig, "unused", "-n", namespace(t)); r.code != 0 || r.out != "No credential went unused for 90d.\n" {
		t.Errorf("nothing unused: exit %d, %q", r.code, r.out)
	}
}
