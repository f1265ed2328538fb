package plugin

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

func newInventory(o *Options) *cobra.Command {
	var (
		cluster, adopt bool
		output         string
	)
	cmd := &cobra.Command{
		Use:   "inventory PROVIDER",
		Short: "Show what a provider's inventory found: managed and unmanaged counts and the unmanaged credentials",
		Long: `Shows the last inventory sweep of a provider with spec.inventory: how many
credentials its key can see at the vendor, how many a RemoteCredential names
(managed) and the unmanaged ones, soonest expiry first (at most 50, as the
provider's status keeps them).

With --adopt -o yaml, prints a RemoteCredential for each unmanaged credential,
ready to commit to Git: the GitOps way to adopt them.`,
		Example: `  kubectl credsync inventory tines-prod -n team-a
  kubectl credsync inventory ece-prod --cluster
  kubectl credsync inventory tines-prod --adopt -o yaml > adopted.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return o.inventory(args[0], cluster, adopt, output)
		},
	}
	cmd.Flags().BoolVar(&cluster, "cluster", false, "PROVIDER is a ClusterCredentialProvider")
	cmd.Flags().BoolVar(&adopt, "adopt", false, "Print RemoteCredentials adopting the unmanaged credentials (with -o yaml or json)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (the provider; with --adopt, the RemoteCredentials); default: a summary")
	return cmd
}

func (o *Options) inventory(name string, cluster, adopt bool, output string) error {
	if adopt && output != "yaml" && output != "json" {
		return errors.New("--adopt prints manifests: add -o yaml (or -o json)")
	}
	c, ns, err := o.clientIn()
	if err != nil {
		return err
	}
	ctx, cancel := ctx()
	defer cancel()
	var provider client.Object
	var spec *v1alpha1.CredentialProviderSpec
	var st *v1alpha1.CredentialProviderStatus
	kind := v1alpha1.CredentialProviderKind
	if cluster {
		p := &v1alpha1.ClusterCredentialProvider{}
		err, provider, spec, st, kind = c.Get(ctx, client.ObjectKey{Name: name}, p), p, p.ProviderSpec(), &p.Status, v1alpha1.ClusterCredentialProviderKind
	} else {
		p := &v1alpha1.CredentialProvider{}
		err, provider, spec, st = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p), p, &p.Spec, &p.Status
	}
	if err != nil {
		what := kind + " " + name
		if !cluster {
			what = kind + " " + ns + "/" + name + " (a ClusterCredentialProvider? add --cluster)"
		}
		return friendly(err, what)
	}
	if adopt {
		list, err := manifests(adoptions(provider, kind, ns, st))
		if err != nil {
			return err
		}
		if inv := st.Inventory; inv != nil && int(inv.Unmanaged) > len(inv.UnmanagedCredentials) {
			// The status keeps the first 50: say so where a redirect to a
			// file does not hide it.
			fmt.Fprintf(o.ErrOut, "warning: %d of %d unmanaged credentials printed (the provider's status keeps the soonest to expire); "+
				"adopt these, and run this again after the next sweep for the rest\n", len(inv.UnmanagedCredentials), inv.Unmanaged)
		}
		return printObjects(o.Out, output, list)
	}
	if output != "" {
		return printObjects(o.Out, output, provider)
	}
	if spec.Inventory == nil {
		return fmt.Errorf("%s %s has no inventory: set spec.inventory.interval to list what its key can see", kind, name)
	}
	return inventorySummary(o, kind, provider, st)
}

// adoptions are the RemoteCredentials that adopt a provider's unmanaged
// credentials, as the operator's own adoption makes them (less the owner
// reference: Git owns them), in the provider's namespace; a
// ClusterCredentialProvider's in ns (the -n namespace), where the user
// chooses to keep them.
func adoptions(provider client.Object, kind, ns string, st *v1alpha1.CredentialProviderStatus) []runtime.Object {
	var list []runtime.Object
	if provider.GetNamespace() != "" {
		ns = provider.GetNamespace()
	}
	if st.Inventory == nil {
		return list
	}
	for _, u := range st.Inventory.UnmanagedCredentials {
		list = append(list, v1alpha1.NewAdoption(kind, provider.GetName(), ns, u.ID, u.UserID))
	}
	return list
}

func inventorySummary(o *Options, kind string, provider client.Object, st *v1alpha1.CredentialProviderStatus) error {
	now := o.Clock.Now()
	name := provider.GetName()
	if ns := provider.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	lines := [][2]string{{"Provider", kind + " " + name + vendorSuffix(st.Vendor)}}
	if cond := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionInventoried); cond != nil {
		lines = append(lines, [2]string{"Inventoried", fmt.Sprintf("%s since %s (%s): %s", cond.Status, relative(cond.LastTransitionTime.Time, now), cond.Reason, cond.Message)})
	} else {
		lines = append(lines, [2]string{"Inventoried", "no sweep has finished yet"})
	}
	inv := st.Inventory
	if inv != nil {
		lines = append(lines, [2]string{"Credentials", fmt.Sprintf("%d listed: %d managed, %d unmanaged", inv.Total, inv.Managed, inv.Unmanaged)})
	}
	if err := writeFields(o.Out, lines); err != nil {
		return err
	}
	if inv == nil || inv.Unmanaged == 0 {
		return nil
	}
	fmt.Fprintln(o.Out)
	t := newTable("ID", "Name", "User", "Created", "Expires")
	for _, u := range inv.UnmanagedCredentials {
		created, expires := "-", "never"
		if u.CreatedAt != nil {
			created = u.CreatedAt.UTC().Format(time.DateOnly)
		}
		if u.ExpiresAt != nil {
			expires = u.ExpiresAt.UTC().Format(time.DateOnly) + " (" + relative(u.ExpiresAt.Time, now) + ")"
		}
		addRow(t, u.ID, dash(u.Name), dash(u.UserID), created, expires)
	}
	if err := printTable(o.Out, o.Width, t, "Name", "ID", "User"); err != nil {
		return err
	}
	if more := int(inv.Unmanaged) - len(inv.UnmanagedCredentials); more > 0 {
		fmt.Fprintf(o.Out, "… and %d more (the provider's status keeps the first %d)\n", more, len(inv.UnmanagedCredentials))
	}
	fmt.Fprintf(o.Out, "\nTo adopt them with GitOps: kubectl credsync inventory %s%s --adopt -o yaml > adopted.yaml, then review and commit.\n",
		provider.GetName(), clusterFlag(kind))
	return nil
}

func vendorSuffix(vendor string) string {
	if vendor == "" {
		return ""
	}
	return " (" + vendor + ")"
}

func clusterFlag(kind string) string {
	if kind == v1alpha1.ClusterCredentialProviderKind {
		return " --cluster"
	}
	return ""
}
