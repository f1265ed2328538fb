package plugin

import (
	"encoding/csv"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/credsync/credsync/api/v1alpha1"
)

func newUnused(o *Options) *cobra.Command {
	return windowCommand(&cobra.Command{
		Use:   "unused",
		Short: "List the credentials nobody used for a while, oldest first, with their owner",
		Long: `Lists every credential whose vendor says it was last used longer ago than
--for, or never used and created longer ago than that, oldest first, with its
owner, provider and namespace. Only vendors that report last use can tell:
the built-in definitions gitlab, gitlab-project, gitlab-group, cloudflare,
datadog, datadog-application-key, atlassian and grafana, and CredentialVendors
that map lastUsedAt. The exit status is 1 when any is found, so it can gate a CI
job.`,
		Example: `  kubectl credsync unused -A
  kubectl credsync unused --for 180d -n team-a -o csv > unused.csv`,
	}, "for", "90d", "Not used for at least: 90d, 12h, 1d12h", o.unused)
}

func (o *Options) unused(window time.Duration, allNamespaces bool, output string) error {
	now := o.Clock.Now()
	var found []v1alpha1.RemoteCredential
	err := o.report(allNamespaces, output, func(all []v1alpha1.RemoteCredential) report {
		found = unusedSince(all, now.Add(-window))
		return report{
			found: found,
			empty: fmt.Sprintf("No credential went unused for %s.\n", duration.HumanDuration(window)),
			table: func() *metav1.Table { return unusedTable(found, allNamespaces, now) },
			csv:   func(w *csv.Writer) error { return unusedCSV(w, found) },
		}
	})
	if err != nil {
		return err
	}
	if len(found) > 0 {
		return finding{msg: fmt.Sprintf("%d credentials went unused for %s", len(found), duration.HumanDuration(window))}
	}
	return nil
}

// lastUse is when rc was last used, or created when never used; nil when
// its vendor does not report use (or a never-used one has no creation
// time).
func lastUse(rc *v1alpha1.RemoteCredential) *metav1.Time {
	at, _ := rc.Status.LastUse()
	return at
}

// unusedSince are the credentials last used (or, never used, created) at
// or before cutoff, oldest first, then by namespace and name.
func unusedSince(rcs []v1alpha1.RemoteCredential, cutoff time.Time) []v1alpha1.RemoteCredential {
	return byTime(rcs, cutoff, lastUse)
}

func unusedTable(rcs []v1alpha1.RemoteCredential, withNamespace bool, now time.Time) *metav1.Table {
	return credentialTable(rcs, withNamespace, []string{"Last Used", "Unused For"}, func(rc *v1alpha1.RemoteCredential) []string {
		used := "never"
		if rc.Status.LastUsedAt != nil {
			used = rc.Status.LastUsedAt.UTC().Format(time.DateOnly)
		}
		return []string{used, duration.HumanDuration(now.Sub(lastUse(rc).Time))}
	})
}

func unusedCSV(w *csv.Writer, rcs []v1alpha1.RemoteCredential) error {
	at := func(t *metav1.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	return credentialCSV(w, rcs, []string{"last_used_at", "created_at"}, func(rc *v1alpha1.RemoteCredential) []string {
		return []string{at(rc.Status.LastUsedAt), at(rc.Status.CreatedAt)}
	})
}
