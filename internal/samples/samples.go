// Package samples holds the vendor side of config/samples: fake vendor APIs
// (HTTPS on loopback) with the credentials the samples name, the Ready
// reason each sample must reach against them, and the samples rewritten to
// point at the fakes. The demo, the end-to-end suite and the fake vendor
// process (hack/fakevendors) share it.
package samples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/gitlabtest"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Endpoint is where a fake vendor listens, for one provider spec block.
type Endpoint struct {
	// Block is the provider spec's vendor block: tines, elasticCloud,
	// plainid, http.
	Block    string `json:"block"`
	URL      string `json:"url"`
	CABundle []byte `json:"caBundle"`
}

// Fake is a running fake vendor API.
type Fake struct {
	Endpoint
	// Scenarios drives its faults and records its calls.
	Scenarios *vendortest.Scenarios
	Close     func()
}

// Expected is the Ready reason each sample RemoteCredential must reach
// against the fakes' data.
var Expected = map[string]string{
	"github-token":          v1alpha1.ReasonSynced,
	"slack-webhook":         v1alpha1.ReasonSynced,
	"jira-service-account":  v1alpha1.ReasonSynced,
	"retired-pagerduty-key": v1alpha1.ReasonNotFound,
	"ci-pipeline-client":    v1alpha1.ReasonSynced,
	"tenant-viewer-client":  v1alpha1.ReasonSynced,
	"logstash-writer-key":   v1alpha1.ReasonSynced,
	"backup-operator-key":   v1alpha1.ReasonSynced,
	"gitlab-ci-deploy":      v1alpha1.ReasonSynced,
	"gitlab-old-export":     v1alpha1.ReasonSynced,
	"gitlab-revoked-bot":    v1alpha1.ReasonRevoked,
}

// Unused names the sample RemoteCredentials whose Unused condition must
// be True against the fakes' data.
var Unused = map[string]bool{"gitlab-old-export": true}

// Inventory is what each sample provider with inventory on must count
// against the fakes' data.
var Inventory = map[string]v1alpha1.InventoryStatus{
	"tines-prod": {Total: 6, Managed: 3, Unmanaged: 3},
}

// SweepServed names the sample RemoteCredentials whose first sync a
// provider's first inventory sweep serves: no GET of their own.
var SweepServed = map[string]bool{"github-token": true, "slack-webhook": true, "jira-service-account": true}

// StartFakes starts the three fake vendors, answering after latency. Their
// expiry dates are set from now, the caller's clock (the one the manager
// they serve reads), so that the samples expire in 9, 10 or 200 days.
func StartFakes(now time.Time, latency time.Duration) []Fake {
	now = now.UTC()
	fakes := []Fake{tinesFake(now), plainIDFake(), elasticFake(now), gitlabFake(now)}
	for _, f := range fakes {
		f.Scenarios.SetLatency(latency)
	}
	return fakes
}

// Endpoints returns where fakes listen.
func Endpoints(fakes []Fake) []Endpoint {
	out := make([]Endpoint, len(fakes))
	for i, f := range fakes {
		out[i] = f.Endpoint
	}
	return out
}

// tinesFake holds the credentials of config/samples/tines.yaml.
func tinesFake(now time.Time) Fake {
	s := tinestest.NewServer("demo-tines-api-key")
	in := func(d time.Duration) *time.Time { t := now.Add(d).Truncate(time.Second); return &t }

	github := tinestest.Sample(4821, "github_token")
	github.Description, github.ExpiresAt = "GitHub fine-grained PAT for CI", in(200*24*time.Hour)
	s.Put(github)

	slack := tinestest.Sample(4822, "slack_webhook")
	slack.Description, slack.Mode, slack.ExpiresAt = "Incident channel webhook", "TEXT", in(9*24*time.Hour)
	s.Put(slack)

	jira := tinestest.Sample(4823, "jira_service_account")
	jira.Description, jira.Mode, jira.ReadAccess = "Jira OAuth app", "OAUTH", "GLOBAL"
	s.Put(jira)
	// 4899 is deliberately absent: deleted at the vendor.

	// Credentials nobody declared: the inventory shows them as unmanaged.
	jenkins := tinestest.Sample(4950, "old_jenkins_token")
	jenkins.Description, jenkins.ExpiresAt, jenkins.OwnerEmail = "made by someone who left", in(5*24*time.Hour), "former.admin@example.com"
	jenkins.Metadata = map[string]string{"token": "unmanaged-metadata-canary-2c4e"}
	s.Put(jenkins)
	aws := tinestest.Sample(4951, "aws_deploy_key")
	aws.Mode, aws.ExpiresAt = "AWS", in(40*24*time.Hour)
	s.Put(aws)
	s.Put(tinestest.Sample(4952, "datadog_api_key"))

	return Fake{Endpoint: Endpoint{Block: "tines", URL: s.URL, CABundle: s.CABundle()}, Scenarios: &s.Scenarios, Close: s.Close}
}

// plainIDFake holds the API clients of config/samples/plainid.yaml.
func plainIDFake() Fake {
	s := plainidtest.NewServer("DEMOADMINCLIENT00001", "demo-plainid-client-secret")
	ci := plainidtest.Sample("PVNTYSTFE2L9R4OJ9YY5", "ci-pipeline")
	ci.Description, ci.TokenDuration = "CI pipeline policy reader", "PT60M"
	s.Put(ci)
	viewer := plainidtest.Sample("QH7K2M9XW4R8T1LZ5NB3", "tenant-viewer")
	viewer.OwnerID, viewer.OwnerType, viewer.Permission, viewer.TokenDuration = "-", "TENANT", "VIEWER", "PT1440M"
	s.Put(viewer)
	return Fake{Endpoint: Endpoint{Block: "plainid", URL: s.URL, CABundle: s.CABundle()}, Scenarios: &s.Scenarios, Close: s.Close}
}

// elasticFake holds the API keys of config/samples/elasticcloud.yaml.
func elasticFake(now time.Time) Fake {
	s := elastictest.NewServer()
	s.AddAPIKey("demo-ece-api-key", "credsync-bot")
	exp := now.Add(10 * 24 * time.Hour).Truncate(time.Second)
	writer := elastictest.Sample("9yD3kLh4TfWQ2sJ6", "credsync-bot", "logstash writer")
	writer.ExpirationDate = &exp
	s.Put(writer)
	s.Put(elastictest.Sample("Qw8nP1rV5xZc3mB7", "backup-operator", "snapshot backups"))
	return Fake{Endpoint: Endpoint{Block: "elasticCloud", URL: s.URL, CABundle: s.CABundle()}, Scenarios: &s.Scenarios, Close: s.Close}
}

// gitlabFake holds the tokens of config/samples/gitlab.yaml: one in use,
// one last used 120 days ago, one revoked.
func gitlabFake(now time.Time) Fake {
	s := gitlabtest.NewServer("demo-gitlab-token")
	ago := func(d time.Duration) *time.Time { t := now.Add(-d).Truncate(time.Second); return &t }
	deploy := gitlabtest.Sample(101, "ci-deploy")
	deploy.Description, deploy.LastUsedAt, deploy.UserID = "CI deploy to production", ago(2*time.Hour), 7
	s.Put(deploy)
	export := gitlabtest.Sample(102, "old-export")
	export.Description, export.LastUsedAt, export.UserID = "nightly export (retired?)", ago(120*24*time.Hour), 12
	export.CreatedAt = now.Add(-400 * 24 * time.Hour).Truncate(time.Second)
	s.Put(export)
	bot := gitlabtest.Sample(103, "revoked-bot")
	bot.Revoked, bot.UserID, bot.LastUsedAt = true, 12, ago(26*time.Hour) // revoked the day after a leak
	s.Put(bot)
	return Fake{Endpoint: Endpoint{Block: "http", URL: s.URL, CABundle: s.CABundle()}, Scenarios: &s.Scenarios, Close: s.Close}
}

// Render reads the samples in dir (config/samples) and points every
// provider at its fake vendor, trusting the fake's certificate with
// caBundle. It returns one JSON document per line, for kubectl apply -f -.
func Render(dir string, endpoints []Endpoint) ([]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out bytes.Buffer
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			obj := map[string]any{}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(obj) == 0 {
				continue
			}
			redirect(obj, endpoints)
			j, err := json.Marshal(obj)
			if err != nil {
				return nil, err
			}
			out.Write(j)
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

func redirect(obj map[string]any, endpoints []Endpoint) {
	kind, _ := obj["kind"].(string)
	if kind != v1alpha1.CredentialProviderKind && kind != v1alpha1.ClusterCredentialProviderKind {
		return
	}
	spec, _ := obj["spec"].(map[string]any)
	for _, e := range endpoints {
		block, ok := spec[e.Block].(map[string]any)
		if !ok {
			continue
		}
		block["url"] = e.URL
		delete(block, "region")
		spec["caBundle"] = e.CABundle
	}
}
