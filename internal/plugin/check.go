package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

// crds are the CRDs this plugin knows, with a field each must have for the
// version it was built for (an older install lacks it).
var crds = []struct{ name, field string }{
	{"remotecredentials.credsync.io", "status.lastUsedAt"},
	{"credentialproviders.credsync.io", "spec.http"},
	{"clustercredentialproviders.credsync.io", "spec.http"},
	{"credentialvendors.credsync.io", "spec.fields"},
}

// operatorSelector labels the operator's Deployment (config/manager and
// the Helm chart).
const operatorSelector = "app.kubernetes.io/name=credsync"

type operatorFlags struct {
	namespace string
	lease     string
}

// newOperatorCommand is a command about the operator's installation,
// with the flags that find it.
func newOperatorCommand(use, short string, run func(operatorFlags) error) *cobra.Command {
	var f operatorFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return run(f)
		},
	}
	cmd.Flags().StringVar(&f.namespace, "operator-namespace", "credsync-system", "Namespace of the operator's Deployment and leader election Lease")
	cmd.Flags().StringVar(&f.lease, "leader-election-id", "credsync.credsync.io", "Name of the operator's leader election Lease")
	return cmd
}

func newCheck(o *Options) *cobra.Command {
	return newOperatorCommand("check", "Check the installation: the CRDs at this plugin's version, the operator's Deployment, the leader", o.check)
}

func (o *Options) check(f operatorFlags) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	problems := 0
	report := func(ok bool, what, detail string) {
		mark := "ok  "
		if !ok {
			mark, problems = "FAIL", problems+1
		}
		fmt.Fprintf(o.Out, "%s  %-10s %s\n", mark, what, detail)
	}
	ctx, cancel := ctx()
	defer cancel()
	for _, want := range crds {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: want.name}, crd); err != nil {
			report(false, "CRD", want.name+": "+friendly(err, "not installed").Error())
			continue
		}
		if ok, detail := crdServes(crd, want.field); !ok {
			report(false, "CRD", want.name+": "+detail)
		} else {
			report(true, "CRD", want.name+": "+detail)
		}
	}
	deploy, err := operatorDeployment(ctx, c, f.namespace)
	switch {
	case err != nil:
		report(false, "operator", err.Error())
	default:
		available := deploy.Status.AvailableReplicas
		want := int32(1)
		if deploy.Spec.Replicas != nil {
			want = *deploy.Spec.Replicas
		}
		report(available > 0, "operator", fmt.Sprintf("Deployment %s/%s: %d of %d replicas available, image %s",
			deploy.Namespace, deploy.Name, available, want, image(deploy)))
	}
	lease := &coordinationv1.Lease{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: f.namespace, Name: f.lease}, lease); {
	case err != nil:
		report(false, "leader", friendly(err, "Lease "+f.namespace+"/"+f.lease).Error()+" (leader election off, or the operator never ran)")
	case lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "":
		report(false, "leader", "Lease "+f.namespace+"/"+f.lease+" has no holder: no replica leads")
	case leaseExpired(lease, o.Clock.Now()):
		report(false, "leader", fmt.Sprintf("Lease %s/%s: %s stopped renewing it %s: no replica leads now",
			f.namespace, f.lease, *lease.Spec.HolderIdentity, relative(lease.Spec.RenewTime.Time, o.Clock.Now())))
	default:
		renewed := ""
		if lease.Spec.RenewTime != nil {
			renewed = ", renewed " + relative(lease.Spec.RenewTime.Time, o.Clock.Now())
		}
		report(true, "leader", *lease.Spec.HolderIdentity+renewed)
	}
	if problems > 0 {
		return finding{msg: fmt.Sprintf("%d problems", problems)}
	}
	return nil
}

// leaseExpired reports whether the lease's holder let it lapse: its last
// renewal is older than the lease's duration (the holder would have
// renewed it well before, were it running).
func leaseExpired(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.After(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

// crdServes reports whether crd serves v1alpha1 with the field this plugin
// needs.
func crdServes(crd *apiextensionsv1.CustomResourceDefinition, field string) (bool, string) {
	for _, v := range crd.Spec.Versions {
		if v.Name != v1alpha1.GroupVersion.Version {
			continue
		}
		if !v.Served {
			return false, v.Name + " is not served"
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil || !hasField(*v.Schema.OpenAPIV3Schema, strings.Split(field, ".")) {
			return false, fmt.Sprintf("%s lacks %s: an older credsync; install the CRDs of %s", v.Name, field, Version)
		}
		return true, v.Name + " served"
	}
	return false, "does not serve " + v1alpha1.GroupVersion.Version
}

func hasField(s apiextensionsv1.JSONSchemaProps, path []string) bool {
	for _, p := range path {
		next, ok := s.Properties[p]
		if !ok {
			return false
		}
		s = next
	}
	return true
}

// operatorDeployment finds the operator's Deployment in ns.
func operatorDeployment(ctx context.Context, c client.Client, ns string) (*appsv1.Deployment, error) {
	list := &appsv1.DeploymentList{}
	sel, err := labels.Parse(operatorSelector)
	if err != nil {
		return nil, err
	}
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, friendly(err, "")
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("no Deployment labelled %s in namespace %s (installed elsewhere? --operator-namespace)", operatorSelector, ns)
	}
	return &list.Items[0], nil
}

func image(d *appsv1.Deployment) string {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" || len(d.Spec.Template.Spec.Containers) == 1 {
			return c.Image
		}
	}
	return "unknown"
}

func newVersion(o *Options) *cobra.Command {
	return newOperatorCommand("version", "Print the plugin's version and, when the cluster is reachable, the operator's",
		func(f operatorFlags) error { return o.version(o.Out, f) })
}

func (o *Options) version(w io.Writer, f operatorFlags) error {
	fmt.Fprintf(w, "kubectl-credsync %s\n", Version)
	c, err := o.Client()
	var deploy *appsv1.Deployment
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		deploy, err = operatorDeployment(ctx, c, f.namespace)
	}
	if err != nil {
		fmt.Fprintf(w, "operator: unknown (%v)\n", err)
		return nil
	}
	fmt.Fprintf(w, "operator %s (Deployment %s/%s)\n", image(deploy), deploy.Namespace, deploy.Name)
	return nil
}
