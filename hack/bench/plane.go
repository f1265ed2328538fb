package main

import (
	"context"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// plane is a table's control plane: envtest, an unthrottled client, and a
// directory holding the manager's kubeconfig and log.
type plane struct {
	env        *envtest.Environment
	cfg        *rest.Config
	k8s        client.Client
	dir        string
	kubeconfig string
}

// startPlane starts a control plane; stop it with plane.stop.
func startPlane(name string) (*plane, error) {
	env, cfg, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	p := &plane{env: env, cfg: rest.CopyConfig(cfg)}
	p.cfg.QPS, p.cfg.Burst = -1, 0
	if p.k8s, err = client.New(p.cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		p.stop()
		return nil, err
	}
	if p.dir, err = os.MkdirTemp("", "credsync-bench-"+name+"-"); err != nil {
		p.stop()
		return nil, err
	}
	if p.kubeconfig, err = testenv.WriteKubeconfig(env, p.dir); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *plane) stop() {
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
	_ = p.env.Stop()
}

// tinesProvider creates namespace ns, its labelled provider Secret and its
// CredentialProvider "tines" at fake, with the request budget limit (nil:
// the vendor's default).
func (p *plane) tinesProvider(ctx context.Context, ns string, fake *tinestest.Server, limit *v1alpha1.RateLimit) error {
	spec := v1alpha1.CredentialProviderSpec{
		Tines:     &v1alpha1.TinesProvider{URL: fake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "tines-api"}},
		CABundle:  fake.CABundle(),
		RateLimit: limit,
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		testenv.ProviderSecret(ns, "tines-api", map[string]string{"apiKey": apiKey}),
		&v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}, Spec: spec},
	} {
		if err := p.k8s.Create(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}
