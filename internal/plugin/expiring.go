package plugin

import (
	"encoding/csv"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

func newExpiring(o *Options) *cobra.Command {
	return windowCommand(&cobra.Command{
		Use:   "expiring",
		Short: "List the credentials that expire within a window or have expired, soonest first, with their owner",
		Long: `Lists every credential whose vendor reports an expiry within --within from
now, or in the past, soonest first, with its owner (the Tines owner's email, the
Elastic user, the PlainID owner), provider and namespace. The exit status is 1
when any has expired, so it can gate a CI job.`,
		Example: `  kubectl credsync expiring -A
  kubectl credsync expiring --within 90d -n team-a -o csv > expiring.csv`,
	}, "within", "30d", "Window from now: 30d, 12h, 1d12h", o.expiring)
}

// windowCommand completes cmd, a listing command over a time window
// (--flag, default def), with -A and -o, to call run.
func windowCommand(cmd *cobra.Command, flag, def, usage string, run func(window time.Duration, allNamespaces bool, output string) error) *cobra.Command {
	var (
		window        string
		allNamespaces bool
		output        string
	)
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(*cobra.Command, []string) error {
		d, err := parseWindow(window)
		if err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
		return run(d, allNamespaces, output)
	}
	cmd.Flags().StringVar(&window, flag, def, usage)
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "In every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: csv, json or yaml; default: a table")
	return cmd
}

func (o *Options) expiring(window time.Duration, allNamespaces bool, output string) error {
	now := o.Clock.Now()
	var found []v1alpha1.RemoteCredential
	err := o.report(allNamespaces, output, func(all []v1alpha1.RemoteCredential) report {
		found = expiringWithin(all, now.Add(window))
		return report{
			found: found,
			empty: fmt.Sprintf("No credential expires within %s.\n", duration.HumanDuration(window)),
			table: func() *metav1.Table { return expiringTable(found, allNamespaces, now) },
			csv:   func(w *csv.Writer) error { return expiringCSV(w, found, now) },
		}
	})
	if err != nil {
		return err
	}
	expired := 0
	for i := range found {
		if !found[i].Status.ExpiresAt.After(now) {
			expired++
		}
	}
	if expired > 0 {
		return finding{msg: fmt.Sprintf("%d credentials have expired", expired)}
	}
	return nil
}

// report is what a listing command found, and how it prints it.
type report struct {
	found []v1alpha1.RemoteCredential
	// empty is printed when nothing was found (table output).
	empty string
	table func() *metav1.Table
	csv   func(w *csv.Writer) error
}

// report lists the RemoteCredentials of the namespace (or all), lets
// pick choose among them, and prints what it found in output: a table
// (columns expiringShrink gives way on a narrow terminal), csv, or the
// objects as json or yaml.
func (o *Options) report(allNamespaces bool, output string, pick func([]v1alpha1.RemoteCredential) report) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	if !allNamespaces {
		ns, err := o.Namespace()
		if err != nil {
			return err
		}
		opts = append(opts, client.InNamespace(ns))
	}
	ctx, cancel := ctx()
	defer cancel()
	list := &v1alpha1.RemoteCredentialList{}
	if err := c.List(ctx, list, opts...); err != nil {
		return friendly(err, "")
	}
	r := pick(list.Items)
	switch output {
	case "":
		if len(r.found) == 0 {
			fmt.Fprint(o.Out, r.empty)
			return nil
		}
		return printTable(o.Out, o.Width, r.table(), expiringShrink...)
	case "csv":
		w := csv.NewWriter(o.Out)
		if err := r.csv(w); err != nil {
			return err
		}
		w.Flush()
		return w.Error()
	}
	// An empty list prints as items: [], not null.
	items := &v1alpha1.RemoteCredentialList{Items: append([]v1alpha1.RemoteCredential{}, r.found...)}
	return printObjects(o.Out, output, items)
}

// expiringWithin are the credentials that expire before until (or have
// expired), soonest first, then by namespace and name.
func expiringWithin(rcs []v1alpha1.RemoteCredential, until time.Time) []v1alpha1.RemoteCredential {
	return byTime(rcs, until, func(rc *v1alpha1.RemoteCredential) *metav1.Time { return rc.Status.ExpiresAt })
}

// byTime are the credentials whose time at (nil: none) is at or before
// cutoff, earliest first, then by namespace and name.
func byTime(rcs []v1alpha1.RemoteCredential, cutoff time.Time, at func(*v1alpha1.RemoteCredential) *metav1.Time) []v1alpha1.RemoteCredential {
	var out []v1alpha1.RemoteCredential
	for i := range rcs {
		if t := at(&rcs[i]); t != nil && !t.After(cutoff) {
			out = append(out, rcs[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := at(&out[i]), at(&out[j])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

// expiringShrink are the columns of expiringTable that give way on a
// narrow terminal, in that order.
var expiringShrink = []string{"Owner", "Name", "Provider", "Namespace"}

func expiringTable(rcs []v1alpha1.RemoteCredential, withNamespace bool, now time.Time) *metav1.Table {
	return credentialTable(rcs, withNamespace, []string{"Expires", "In"}, func(rc *v1alpha1.RemoteCredential) []string {
		return []string{rc.Status.ExpiresAt.UTC().Format(time.DateOnly), relative(rc.Status.ExpiresAt.Time, now)}
	})
}

// credentialTable is the table of rcs a listing command prints: each
// credential's namespace (withNamespace), name, provider, vendor and
// owner, then the columns more, whose cells cells gives.
func credentialTable(rcs []v1alpha1.RemoteCredential, withNamespace bool, more []string, cells func(*v1alpha1.RemoteCredential) []string) *metav1.Table {
	columns := append([]string{"Name", "Provider", "Vendor", "Owner"}, more...)
	if withNamespace {
		columns = append([]string{"Namespace"}, columns...)
	}
	t := newTable(columns...)
	for i := range rcs {
		rc := &rcs[i]
		row := append([]string{rc.Name, rc.Spec.ProviderRef.Name, rc.Status.Vendor, dash(rc.Status.Owner)}, cells(rc)...)
		if withNamespace {
			row = append([]string{rc.Namespace}, row...)
		}
		addRow(t, row...)
	}
	return t
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func expiringCSV(w *csv.Writer, rcs []v1alpha1.RemoteCredential, now time.Time) error {
	return credentialCSV(w, rcs, []string{"expires_at", "expired"}, func(rc *v1alpha1.RemoteCredential) []string {
		return []string{rc.Status.ExpiresAt.UTC().Format(time.RFC3339), fmt.Sprint(!rc.Status.ExpiresAt.After(now))}
	})
}

// credentialCSV writes rcs as CSV: each credential's namespace, name,
// provider, vendor, id, owner and vendor name, then the columns more,
// whose values values gives.
func credentialCSV(w *csv.Writer, rcs []v1alpha1.RemoteCredential, more []string, values func(*v1alpha1.RemoteCredential) []string) error {
	if err := w.Write(append([]string{"namespace", "name", "provider", "vendor", "id", "owner", "vendor_name"}, more...)); err != nil {
		return err
	}
	for i := range rcs {
		rc := &rcs[i]
		if err := w.Write(append([]string{rc.Namespace, rc.Name, rc.Spec.ProviderRef.Name, rc.Status.Vendor, rc.Spec.ID, rc.Status.Owner, rc.Status.Name},
			values(rc)...)); err != nil {
			return err
		}
	}
	return nil
}
