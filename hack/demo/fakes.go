package main

import (
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// fake is a running fake vendor API and the provider block it serves.
type fake struct {
	block    string // the provider spec's vendor block: tines, elasticCloud, plainid
	url      string
	caBundle []byte
	close    func()
}

// expected is the Ready reason each sample RemoteCredential must reach
// against the fakes' data.
var expected = map[string]string{
	"github-token":          v1alpha1.ReasonSynced,
	"slack-webhook":         v1alpha1.ReasonSynced,
	"jira-service-account":  v1alpha1.ReasonSynced,
	"retired-pagerduty-key": v1alpha1.ReasonNotFound,
}

func startFakes() []fake {
	return []fake{tinesFake()}
}

// tinesFake holds the credentials of config/samples/tines.yaml.
func tinesFake() fake {
	now := time.Now().UTC()
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

	return fake{block: "tines", url: s.URL, caBundle: s.CABundle(), close: s.Close}
}
