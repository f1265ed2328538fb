package deploy

import "testing"

// defaultObjects are the objects config/default installs, as kind/name.
var defaultObjects = []string{
	"Namespace/credsync-system",
	"CustomResourceDefinition/clustercredentialproviders.credsync.io",
	"CustomResourceDefinition/credentialproviders.credsync.io",
	"CustomResourceDefinition/credentialvendors.credsync.io",
	"CustomResourceDefinition/remotecredentials.credsync.io",
	"ServiceAccount/credsync-manager",
	"ClusterRole/credsync-manager-role",
	"ClusterRoleBinding/credsync-manager-rolebinding",
	"Role/credsync-leader-election-role",
	"RoleBinding/credsync-leader-election-rolebinding",
	"Deployment/credsync-manager",
	"Service/credsync-metrics",
	"NetworkPolicy/credsync-manager",
}

// TestKustomizeDefaultApplies: kustomize build config/default renders
// everything credsync needs, every namespaced object in credsync-system,
// and the API server accepts all of it.
func TestKustomizeDefaultApplies(t *testing.T) {
	objs := kustomizeBuild(t)
	requireObjects(t, objs, defaultObjects)
	requireNamespaces(t, objs, systemNS)

	// The namespace for real (a dry run of the objects in it needs it to
	// exist), then everything as a server-side dry run.
	if out, err := kubectl(t, stream(t, ofKind(objs, "Namespace")), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply the namespace: %v\n%s", err, out)
	}
	dryRunApply(t, objs)
}
