package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

type syncOptions struct {
	selector      string
	all           bool
	allNamespaces bool
	wait          bool
	timeout       time.Duration
}

func newSync(o *Options) *cobra.Command {
	var so syncOptions
	cmd := &cobra.Command{
		Use:   "sync (NAME... | -l SELECTOR | --all)",
		Short: "Ask the operator to sync credentials now; with --wait, print the outcome",
		Long: `Sets the annotation credsync.io/sync-requested-at on each credential: the
operator reads it from its vendor at once and echoes the value in
status.lastHandledSyncRequest. With --wait, waits for that echo and prints each
outcome; the exit status is 1 when any credential ends not Ready.`,
		Example: `  kubectl credsync sync github-token --wait
  kubectl credsync sync -l team=payments -A --wait --timeout 2m`,
		RunE: func(_ *cobra.Command, args []string) error {
			return o.sync(args, so)
		},
	}
	cmd.Flags().StringVarP(&so.selector, "selector", "l", "", "Sync the credentials matching this label selector")
	cmd.Flags().BoolVar(&so.all, "all", false, "Sync every credential of the namespace (every namespace with -A)")
	cmd.Flags().BoolVarP(&so.allNamespaces, "all-namespaces", "A", false, "With -l or --all: in every namespace")
	cmd.Flags().BoolVar(&so.wait, "wait", false, "Wait until the operator has synced them and print the outcome")
	cmd.Flags().DurationVar(&so.timeout, "timeout", time.Minute, "With --wait: how long to wait")
	return cmd
}

func (o *Options) sync(names []string, so syncOptions) error {
	chosen := 0
	for _, set := range []bool{len(names) > 0, so.selector != "", so.all} {
		if set {
			chosen++
		}
	}
	if chosen != 1 {
		return errors.New("name the credentials to sync: NAME..., -l SELECTOR or --all (one of them)")
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	rcs, err := o.selectCredentials(c, names, so)
	if err != nil {
		return err
	}
	if len(rcs) == 0 {
		return errors.New("no RemoteCredential matches")
	}
	request := o.Clock.Now().UTC().Format(time.RFC3339Nano)
	ctx, cancel := ctx()
	defer cancel()
	for i := range rcs {
		rc := &rcs[i]
		patch := client.MergeFrom(rc.DeepCopy())
		if rc.Annotations == nil {
			rc.Annotations = map[string]string{}
		}
		rc.Annotations[v1alpha1.SyncRequestedAtAnnotation] = request
		if err := c.Patch(ctx, rc, patch); err != nil {
			return friendly(err, fmt.Sprintf("RemoteCredential %s/%s", rc.Namespace, rc.Name))
		}
		if !so.wait {
			fmt.Fprintf(o.Out, "%s/%s: sync requested\n", rc.Namespace, rc.Name)
		}
	}
	if !so.wait {
		return nil
	}
	return o.waitSynced(c, rcs, request, so.timeout)
}

// selectCredentials finds the credentials sync names.
func (o *Options) selectCredentials(c client.Client, names []string, so syncOptions) ([]v1alpha1.RemoteCredential, error) {
	ns, err := o.Namespace()
	if err != nil {
		return nil, err
	}
	ctx, cancel := ctx()
	defer cancel()
	if len(names) > 0 {
		out := make([]v1alpha1.RemoteCredential, 0, len(names))
		seen := map[string]bool{}
		for _, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			var rc v1alpha1.RemoteCredential
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rc); err != nil {
				return nil, friendly(err, fmt.Sprintf("RemoteCredential %s/%s", ns, name))
			}
			out = append(out, rc)
		}
		return out, nil
	}
	var opts []client.ListOption
	if !so.allNamespaces {
		opts = append(opts, client.InNamespace(ns))
	}
	if so.selector != "" {
		sel, err := labels.Parse(so.selector)
		if err != nil {
			return nil, fmt.Errorf("label selector %q: %w", so.selector, err)
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	}
	list := &v1alpha1.RemoteCredentialList{}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, friendly(err, "")
	}
	return list.Items, nil
}

// waitSynced waits until the operator has handled request on every
// credential, printing each outcome as it comes.
func (o *Options) waitSynced(c client.Client, rcs []v1alpha1.RemoteCredential, request string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pending := map[client.ObjectKey]bool{}
	for i := range rcs {
		pending[client.ObjectKeyFromObject(&rcs[i])] = true
	}
	failed := 0
	for len(pending) > 0 {
		for key := range pending {
			rc := &v1alpha1.RemoteCredential{}
			if err := c.Get(ctx, key, rc); err != nil {
				if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < time.Second {
					break // the timeout, not the cluster: reported below
				}
				return friendly(err, "RemoteCredential "+key.String())
			}
			ready := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady)
			if !handled(rc.Status.LastHandledSyncRequest, request) || rc.Status.ObservedGeneration != rc.Generation || ready == nil {
				continue
			}
			delete(pending, key)
			fmt.Fprintf(o.Out, "%s: %s (%s): %s\n", key, readyWord(ready), ready.Reason, ready.Message)
			if ready.Status != metav1.ConditionTrue {
				failed++
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			for key := range pending {
				fmt.Fprintf(o.Out, "%s: not synced within %s (is the operator running? kubectl credsync check)\n", key, timeout)
			}
			return finding{msg: fmt.Sprintf("%d of %d credentials not synced within %s", len(pending), len(rcs), timeout)}
		case <-time.After(o.Poll):
		}
	}
	if failed > 0 {
		return finding{msg: fmt.Sprintf("%d of %d credentials are not Ready", failed, len(rcs))}
	}
	return nil
}

// handled reports whether the operator's last handled sync request
// answers request: it is request, or a later one (another sync of the same
// credential replaced the annotation before the operator saw ours; the
// sync it made is newer than the one asked for).
func handled(last, request string) bool {
	if last == request {
		return true
	}
	l, err1 := time.Parse(time.RFC3339Nano, last)
	r, err2 := time.Parse(time.RFC3339Nano, request)
	return err1 == nil && err2 == nil && l.After(r)
}

func readyWord(c *metav1.Condition) string {
	if c.Status == metav1.ConditionTrue {
		return "Ready"
	}
	return "not Ready"
}
