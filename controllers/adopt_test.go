package controllers

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
	"github.com/credsync/credsync/internal/vendors"
)

// A manager that could not see what it adopts refuses to adopt, and says
// why, before any API call (the reconciler here has no client).
func TestAdoptRefusesWhatTheManagerCannotSee(t *testing.T) {
	listed := []account.Listed{{Ref: vendors.Ref{ID: "7"}}}
	cluster := &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: "ece"}}
	for _, tc := range []struct {
		r    *providerReconciler
		want string
	}{
		{&providerReconciler{WatchLabelSelector: "shard=a"}, "--watch-label-selector=shard=a"},
		{&providerReconciler{ClusterResourceNamespace: "credsync-system", WatchNamespaces: []string{"team-a"}}, "namespace credsync-system"},
	} {
		if got := tc.r.adopt(context.Background(), cluster, listed); !strings.Contains(got, tc.want) {
			t.Errorf("adopt = %q, want it to name %q", got, tc.want)
		}
	}
	if got := (&providerReconciler{}).adopt(context.Background(), cluster, nil); got != "" {
		t.Errorf("adopting nothing: %q", got)
	}
}
