// Package plugin is kubectl-credsync, the kubectl plugin of credsync: the
// questions platform teams ask every week, one command each. It reads and
// annotates credsync's objects with the user's own kubeconfig and rights;
// it never talks to a vendor.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Version is the plugin's version, set at build time
// (-ldflags -X github.com/credsync/credsync/internal/plugin.Version=v0.1.0).
var Version = "dev"

// Exit codes beyond 0 (success) and 1 (an error, or a finding such as an
// expired credential or a credential that ends not Ready).
const (
	// ExitError is a failure to run the command: bad flags, no cluster
	// access, a missing CRD or object.
	ExitError = 2
)

// Options are what every command shares.
type Options struct {
	genericiooptions.IOStreams
	Flags *genericclioptions.ConfigFlags
	// Clock reads the time (relative times, sync requests).
	Clock clock.Clock
	// Width is the terminal's width for tables; 0: no limit. Set from
	// the terminal when stdout is one.
	Width int
	// Poll is how often --wait looks again.
	Poll time.Duration

	client client.Client
}

// scheme knows credsync's kinds and the built-in ones the plugin reads.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// Client returns a client of the cluster the flags name.
func (o *Options) Client() (client.Client, error) {
	if o.client != nil {
		return o.client, nil
	}
	cfg, err := o.Flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("no usable kubeconfig: %w", err)
	}
	if cfg.Timeout == 0 { // --request-timeout unset
		cfg.Timeout = 30 * time.Second
	}
	// A person's command makes few requests; --wait polls a few a second.
	cfg.QPS, cfg.Burst = 50, 100
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, friendly(err, "")
	}
	o.client = c
	return c, nil
}

// clientIn returns a client and the namespace of the flags or the
// kubeconfig context.
func (o *Options) clientIn() (client.Client, string, error) {
	c, err := o.Client()
	if err != nil {
		return nil, "", err
	}
	ns, err := o.Namespace()
	return c, ns, err
}

// Namespace returns the namespace of the flags or the kubeconfig context.
func (o *Options) Namespace() (string, error) {
	ns, _, err := o.Flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("no usable kubeconfig: %w", err)
	}
	return ns, nil
}

// NewCommand returns `kubectl credsync` with its subcommands.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{IOStreams: streams, Flags: genericclioptions.NewConfigFlags(true), Clock: clock.RealClock{}, Poll: 500 * time.Millisecond}
	if f, ok := streams.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			o.Width = w
		}
	}
	return newRoot(o)
}

func newRoot(o *Options) *cobra.Command {
	root := &cobra.Command{
		// As a kubectl plugin the command is "kubectl credsync": cobra takes
		// the name from Use's first word, and the display name for usage.
		Use:         "credsync",
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl credsync"},
		Short:       "Ask credsync about the credentials your teams hold at SaaS vendors",
		Long: `kubectl credsync answers the questions asked every week about the API keys
credsync keeps track of: what expires soon and who owns it, why one is red,
sync one now, which keys at a vendor nobody declared.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(o.Out)
	root.SetErr(o.ErrOut)
	o.Flags.AddFlags(root.PersistentFlags())
	root.AddCommand(newStatus(o), newSync(o), newExpiring(o), newUnused(o), newInventory(o), newCheck(o), newVersion(o))
	return root
}

// Run runs the plugin with args and returns its exit status; errors are
// written to stderr as one line, without a stack trace.
func Run(cmd *cobra.Command, args []string, stderr io.Writer) int {
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	var f finding
	if errors.As(err, &f) {
		if f.msg != "" {
			fmt.Fprintln(stderr, f.msg)
		}
		return 1
	}
	fmt.Fprintln(stderr, "error: "+err.Error())
	return ExitError
}

// finding is a command's verdict that is not an error: an expired
// credential, a sync that did not end Ready. Exit status 1.
type finding struct{ msg string }

func (f finding) Error() string { return f.msg }

// friendly turns the errors of talking to a cluster into one line a person
// can act on: a missing CRD, a missing object, no access.
func friendly(err error, what string) error {
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case meta.IsNoMatchError(err) || isMissingResource(err):
		return errors.New("credsync is not installed in this cluster: the API server knows no credsync.io/v1alpha1 kinds " +
			"(install the CRDs: make deploy, or helm install credsync charts/credsync)")
	case apierrors.IsNotFound(err) && what != "":
		return fmt.Errorf("%s not found", what)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("your kubeconfig's user may not do this: %s", apierrors.ReasonForError(err))
	case apierrors.IsUnauthorized(err):
		return errors.New("the cluster refused your credentials (401): log in again or check the kubeconfig's user")
	case errors.As(err, &urlErr):
		host := urlErr.URL
		if u, perr := url.Parse(urlErr.URL); perr == nil {
			host = u.Scheme + "://" + u.Host
		}
		cause := urlErr.Err.Error()
		var opErr *net.OpError
		if errors.As(urlErr.Err, &opErr) && opErr.Err != nil {
			cause = opErr.Err.Error()
		}
		return fmt.Errorf("cannot reach the cluster at %s: %s", host, cause)
	case errors.As(err, &netErr):
		return fmt.Errorf("cannot reach the cluster: %v", err)
	}
	return err
}

// isMissingResource reports a discovery failure for credsync's group.
func isMissingResource(err error) bool {
	return strings.Contains(err.Error(), "credsync.io/v1alpha1") &&
		(strings.Contains(err.Error(), "could not find the requested resource") || strings.Contains(err.Error(), "no matches for kind"))
}

// ctx bounds a command's requests together (each is bounded by
// --request-timeout, 30s by default).
func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}
