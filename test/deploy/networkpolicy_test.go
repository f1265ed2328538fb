package deploy

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The manager's NetworkPolicy (config/default/networkpolicy.yaml and the
// chart's templates/networkpolicy.yaml): these tests apply each render to
// the API server, read back what it stored (defaults filled in), and check
// that the policy selects the manager's pods and what it lets through.

// target is a destination outside the cluster: an address, a port and a
// protocol.
type target struct {
	addr  string
	port  int32
	proto corev1.Protocol
}

func tcp(addr string, port int32) target { return target{addr, port, corev1.ProtocolTCP} }
func udp(addr string, port int32) target { return target{addr, port, corev1.ProtocolUDP} }

// Destinations every render must refuse: cloud metadata and other
// link-local addresses, on the vendor and API server ports and others.
var linkLocal = []target{
	tcp("169.254.169.254", 80), tcp("169.254.169.254", 443), tcp("169.254.169.254", 6443),
	tcp("169.254.169.254", 8080), tcp("169.254.0.1", 443), tcp("fe80::1", 443), tcp("fe80::a9fe:a9fe", 6443),
}

// TestNetworkPolicyDefaults: config/default and the chart with default
// values install a policy that, on the API server, selects the manager's
// pods, lets in only the metrics and probe ports, and lets out DNS, the API
// server's ports and 443 on public addresses, never link-local.
func TestNetworkPolicyDefaults(t *testing.T) {
	renders := map[string]func(t *testing.T) []*unstructured.Unstructured{
		"config/default": kustomizeBuild,
		"chart":          func(t *testing.T) []*unstructured.Unstructured { return helmTemplate(t) },
	}
	for name, render := range renders {
		t.Run(name, func(t *testing.T) {
			np, d := applyPolicy(t, render(t), "np-default-"+strings.ReplaceAll(name, "/", "-"))
			requireIngressOnly(t, np, containerPorts(t, d))
			requireEgress(t, np, linkLocal, []target{
				udp("10.96.0.10", 53), tcp("10.96.0.10", 53), udp("1.1.1.1", 53),
				tcp("1.1.1.1", 443), tcp("140.82.112.3", 443), tcp("2606:4700::1111", 443),
				// The API server's ports, anywhere but link-local (its address is not known).
				tcp("10.0.0.1", 443), tcp("192.168.49.2", 6443), tcp("34.120.0.1", 6443),
			}, []target{
				tcp("1.1.1.1", 80), tcp("1.1.1.1", 22), tcp("1.1.1.1", 8443), udp("1.1.1.1", 443),
				tcp("10.1.2.3", 80), tcp("10.1.2.3", 5432), tcp("192.168.1.10", 8080), tcp("fd00::1", 80),
			})
		})
	}
}

// TestNetworkPolicyAllOptions: with every value set, the API server rule
// holds only its CIDRs and ports, so private addresses are closed on 443
// but for allowedPrivateNetworks; the vendor ports, DNS peers and extra
// rules reach the policy.
func TestNetworkPolicyAllOptions(t *testing.T) {
	np, d := applyPolicy(t, helmTemplate(t, "-f", allOnValues), "np-all-on")
	requireIngressOnly(t, np, containerPorts(t, d))
	requireEgress(t, np, linkLocal, []target{
		tcp("1.1.1.1", 443), tcp("1.1.1.1", 12443), tcp("2606:4700::1111", 443),
		tcp("10.0.0.1", 6443), tcp("172.18.0.2", 6443), // apiServer.cidrs and ports
		tcp("10.20.3.4", 443), tcp("10.20.3.4", 12443), tcp("fd12:3456::7", 443), // allowedPrivateNetworks
		tcp("10.0.0.10", 3128), // extraEgress: the vendor proxy
	}, []target{
		tcp("10.0.0.1", 443), tcp("10.0.0.2", 6443), // not the API server
		tcp("10.1.2.3", 443), tcp("172.16.0.1", 443), tcp("192.168.1.10", 443), tcp("100.64.0.1", 443),
		tcp("fd00::1", 443), tcp("10.20.3.4", 22), tcp("10.0.0.10", 443),
		// dnsTo names the cluster DNS pods, so DNS goes nowhere else.
		udp("1.1.1.1", 53), udp("10.96.0.10", 53),
	})
	var kubeDNS bool
	for _, r := range np.Spec.Egress {
		for _, p := range r.To {
			kubeDNS = kubeDNS || (p.PodSelector != nil && p.PodSelector.MatchLabels["k8s-app"] == "kube-dns")
		}
	}
	if !kubeDNS {
		t.Errorf("networkPolicy.dnsTo did not reach the egress rules: %+v", np.Spec.Egress)
	}
	var metricsFrom bool
	for _, r := range np.Spec.Ingress {
		for _, p := range r.From {
			metricsFrom = metricsFrom || (p.PodSelector != nil && p.PodSelector.MatchLabels["app.kubernetes.io/name"] == "prometheus")
		}
	}
	if !metricsFrom {
		t.Errorf("networkPolicy.metricsFrom did not reach the ingress rules: %+v", np.Spec.Ingress)
	}
}

// TestNetworkPolicyToggles: metrics off leaves the probe port as the only
// way in; networkPolicy.enabled=false renders no policy; a value that would
// make a rule without ports (every port) does not render.
func TestNetworkPolicyToggles(t *testing.T) {
	np, d := applyPolicy(t, helmTemplate(t, "--set", "metrics.enabled=false"), "np-metrics-off")
	requireIngressOnly(t, np, containerPorts(t, d))
	if got := containerPorts(t, d); !slices.Equal(got, []int32{8081}) {
		t.Errorf("metrics off: container ports %v, want [8081]", got)
	}

	if objs := helmTemplate(t, "--set", "networkPolicy.enabled=false"); len(ofKind(objs, "NetworkPolicy")) != 0 {
		t.Errorf("networkPolicy.enabled=false still renders %s", summary(ofKind(objs, "NetworkPolicy")))
	}

	for _, set := range []string{"networkPolicy.vendorPorts=null", "networkPolicy.apiServer.ports=null"} {
		out, err := helmFails(t, "--set", set)
		if err == nil || !strings.Contains(out, "must not be empty") {
			t.Errorf("helm template --set %s: err %v, want a refusal naming the empty ports; output:\n%s", set, err, out)
		}
	}
}

// TestNetworkPolicyMatchesConfig: the chart's policy with default values is
// config/default's (but for the pod labels, which the chart writes per
// release), and each selects its own Deployment's pods.
func TestNetworkPolicyMatchesConfig(t *testing.T) {
	chartObjs, configObjs := helmTemplate(t), kustomizeBuild(t)
	var hp, kp networkingv1.NetworkPolicy
	decode(t, find(t, chartObjs, "NetworkPolicy", "credsync-manager"), &hp)
	decode(t, find(t, configObjs, "NetworkPolicy", "credsync-manager"), &kp)
	for name, c := range map[string]struct {
		objs []*unstructured.Unstructured
		np   *networkingv1.NetworkPolicy
	}{"chart": {chartObjs, &hp}, "config/default": {configObjs, &kp}} {
		var d appsv1.Deployment
		decode(t, find(t, c.objs, "Deployment", "credsync-manager"), &d)
		requireSelects(t, name, c.np, &d)
	}
	hs, ks := hp.Spec.DeepCopy(), kp.Spec.DeepCopy()
	hs.PodSelector, ks.PodSelector = metav1.LabelSelector{}, metav1.LabelSelector{}
	same(t, "NetworkPolicy spec but podSelector (charts/credsync/templates/networkpolicy.yaml against config/default/networkpolicy.yaml)", hs, ks)
}

// TestNetworkPolicyKustomizeTightened: the overlay docs/networkpolicy.md
// gives, as written there, replaces the API server rule's addresses and
// adds a private network to the policy and to the manager's flags; then
// among private addresses only those two are open.
func TestNetworkPolicyKustomizeTightened(t *testing.T) {
	objs := kustomizeOverlay(t, docBlock(t, "docs/networkpolicy.md", "path: /spec/egress/1/to"))
	np, d := applyPolicy(t, objs, "np-kustomize-tight")
	requireIngressOnly(t, np, containerPorts(t, d))
	requireEgress(t, np, linkLocal,
		[]target{tcp("10.0.0.5", 6443), tcp("10.0.0.5", 443), tcp("10.20.3.4", 12443), tcp("1.1.1.1", 443)},
		[]target{tcp("10.0.0.6", 6443), tcp("10.1.2.3", 443), tcp("192.168.49.2", 6443), tcp("10.20.3.4", 22)})
	if args := managerContainer(t, d).Args; !slices.Contains(args, "--allowed-private-networks=10.20.0.0/16") {
		t.Errorf("manager args %q lack the overlay's --allowed-private-networks=10.20.0.0/16", args)
	}
}

// applyPolicy applies the namespaced objects of objs to namespace ns (made
// for the test) for real, creates a Pod from the manager Deployment's pod
// template as stored, and fails t unless the API server, asked for the pods
// the stored policy's podSelector selects, returns that Pod and only it.
// It returns the stored policy and Deployment.
func applyPolicy(t *testing.T, objs []*unstructured.Unstructured, ns string) (*networkingv1.NetworkPolicy, *appsv1.Deployment) {
	t.Helper()
	applyNamespaced(t, objs, ns)
	var d appsv1.Deployment
	getJSON(t, ns, "deployment", ofKind(objs, "Deployment")[0].GetName(), &d)
	var np networkingv1.NetworkPolicy
	nps := ofKind(objs, "NetworkPolicy")
	if len(nps) != 1 {
		t.Fatalf("render holds %d NetworkPolicies, want 1: %s", len(nps), summary(objs))
	}
	getJSON(t, ns, "networkpolicy", nps[0].GetName(), &np)

	requireSelects(t, ns, &np, &d)
	// And as the API server sees it: a pod of the template, and one of
	// another app in the same namespace.
	tmpl := *d.Spec.Template.DeepCopy()
	tmpl.Spec.PriorityClassName = "" // the all-on values name one that does not exist here
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "manager", Labels: tmpl.Labels}, Spec: tmpl.Spec},
		{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"app.kubernetes.io/name": "other"}}, Spec: tmpl.Spec},
	}
	var podObjs []*unstructured.Unstructured
	for _, p := range pods {
		p.APIVersion, p.Kind, p.Namespace = "v1", "Pod", ns
		podObjs = append(podObjs, toUnstructured(t, p))
	}
	if out, err := kubectl(t, stream(t, podObjs), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply the pods: %v\n%s", err, out)
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatalf("NetworkPolicy podSelector: %v", err)
	}
	out, err := kubectl(t, nil, "get", "pods", "-n", ns, "-l", sel.String(), "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get pods -l %s: %v\n%s", sel, err, out)
	}
	if got := strings.Fields(out); !slices.Equal(got, []string{"pod/manager"}) {
		t.Errorf("NetworkPolicy %s/%s podSelector %s selects %v on the API server, want only the manager's pod", ns, np.Name, sel, got)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("NetworkPolicy policyTypes %v, want Ingress and Egress (a missing type leaves that direction open)", np.Spec.PolicyTypes)
	}
	return &np, &d
}

// requireSelects fails t unless np, in d's namespace, selects d's pods.
func requireSelects(t *testing.T, what string, np *networkingv1.NetworkPolicy, d *appsv1.Deployment) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatalf("%s: NetworkPolicy podSelector: %v", what, err)
	}
	if sel.Empty() {
		t.Errorf("%s: NetworkPolicy podSelector is empty: it selects every pod of the namespace", what)
	}
	if !sel.Matches(labelsOf(d.Spec.Template.Labels)) {
		t.Errorf("%s: NetworkPolicy podSelector %s does not select the manager's pods %v", what, sel, d.Spec.Template.Labels)
	}
	if np.Namespace != d.Namespace {
		t.Errorf("%s: NetworkPolicy in namespace %q, the Deployment in %q", what, np.Namespace, d.Namespace)
	}
}

// requireIngressOnly fails t unless every ingress rule of np names its
// ports (a rule without ports admits every port), all TCP, and together
// they are exactly the manager container's ports.
func requireIngressOnly(t *testing.T, np *networkingv1.NetworkPolicy, want []int32) {
	t.Helper()
	var got []int32
	for i, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 {
			t.Errorf("ingress rule %d has no ports: it admits every port", i)
		}
		for _, p := range r.Ports {
			if p.Port == nil || p.Port.Type != intstr.Int || p.EndPort != nil || p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP {
				t.Errorf("ingress rule %d port %+v: want one numbered TCP port", i, p)
				continue
			}
			got = append(got, p.Port.IntVal)
		}
	}
	got = slices.Compact(slices.Sorted(slices.Values(got)))
	if !slices.Equal(got, want) {
		t.Errorf("ingress admits ports %v, want exactly the manager's %v", got, want)
	}
}

// requireEgress fails t unless np lets out every target of allowed and
// none of linkLocal and denied.
func requireEgress(t *testing.T, np *networkingv1.NetworkPolicy, linkLocal, allowed, denied []target) {
	t.Helper()
	for _, d := range allowed {
		if !egressAllows(t, np, d) {
			t.Errorf("egress refuses %s %s port %d; want it allowed", d.proto, d.addr, d.port)
		}
	}
	for _, d := range append(slices.Clone(linkLocal), denied...) {
		if egressAllows(t, np, d) {
			t.Errorf("egress allows %s %s port %d; want it refused", d.proto, d.addr, d.port)
		}
	}
}

// egressAllows reports whether np lets its pods connect to d, an address
// outside the cluster, as NetworkPolicy defines it: some rule matches both
// the port (no ports: every port) and the address (no peers: everywhere;
// an ipBlock's cidr holds it and none of its excepts does). Pod and
// namespace selectors select pods, never such an address.
func egressAllows(t *testing.T, np *networkingv1.NetworkPolicy, d target) bool {
	t.Helper()
	ip := netip.MustParseAddr(d.addr)
	for _, r := range np.Spec.Egress {
		if portMatches(r.Ports, d) && peerMatches(t, r.To, ip) {
			return true
		}
	}
	return false
}

func portMatches(ports []networkingv1.NetworkPolicyPort, d target) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != d.proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.Type != intstr.Int {
			continue // a named port is a port of a selected pod
		}
		end := p.Port.IntVal
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if d.port >= p.Port.IntVal && d.port <= end {
			return true
		}
	}
	return false
}

func peerMatches(t *testing.T, peers []networkingv1.NetworkPolicyPeer, ip netip.Addr) bool {
	t.Helper()
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock == nil {
			continue
		}
		if !netip.MustParsePrefix(p.IPBlock.CIDR).Contains(ip) {
			continue
		}
		excepted := false
		for _, e := range p.IPBlock.Except {
			excepted = excepted || netip.MustParsePrefix(e).Contains(ip)
		}
		if !excepted {
			return true
		}
	}
	return false
}

// containerPorts are the manager container's ports, sorted.
func containerPorts(t *testing.T, d *appsv1.Deployment) []int32 {
	t.Helper()
	var ports []int32
	for _, p := range managerContainer(t, d).Ports {
		ports = append(ports, p.ContainerPort)
	}
	return slices.Sorted(slices.Values(ports))
}

// helmFails renders the chart with args and returns what helm printed and
// its error (nil when it rendered).
func helmFails(t *testing.T, args ...string) (string, error) {
	t.Helper()
	base := []string{"template", release, chart, "--namespace", systemNS}
	return runCmd(t, tool(t, "helm"), append(base, args...)...)
}

// kustomizeOverlay builds a kustomization written in a temporary directory
// beside config/default (kustomize takes bases by relative path only, as
// make deploy does).
func kustomizeOverlay(t *testing.T, kustomization string) []*unstructured.Unstructured {
	t.Helper()
	k := tool(t, "kustomize")
	dir, err := os.MkdirTemp(filepath.Join(root, "config"), ".deploy-test.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}
	return parse(t, output(t, k, "build", dir))
}
