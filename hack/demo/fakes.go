package main

import (
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
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
	"ci-pipeline-client":    v1alpha1.ReasonSynced,
	"tenant-viewer-client":  v1alpha1.ReasonSynced,
	"logstash-writer-key":   v1alpha1.ReasonSynced,
	"backup-operator-key":   v1alpha1.ReasonSynced,
}

func startFakes() []fake {
	return []fake{tinesFake(), plainIDFake(), elasticFake()}
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

// plainIDFake holds the API clients of config/samples/plainid.yaml.
func plainIDFake() fake {
	s := plainidtest.NewServer("DEMOADMINCLIENT00001", "demo-plainid-client-secret")
	ci := plainidtest.Sample("PVNTYSTFE2L9R4OJ9YY5", "ci-pipeline")
	ci.Description, ci.TokenDuration = "CI pipeline policy reader", "PT60M"
	s.Put(ci)
	viewer := plainidtest.Sample("QH7K2M9XW4R8T1LZ5NB3", "tenant-viewer")
	viewer.OwnerID, viewer.OwnerType, viewer.Permission, viewer.TokenDuration = "-", "TENANT", "VIEWER", "PT1440M"
	s.Put(viewer)
	return fake{block: "plainid", url: s.URL, caBundle: s.CABundle(), close: s.Close}
}

// elasticFake holds the API keys of config/samples/elasticcloud.yaml.
func elasticFake() fake {
	s := elastictest.NewServer()
	s.AddAPIKey("demo-ece-api-key", "credsync-bot")
	exp := time.Now().UTC().Add(10 * 24 * time.Hour).Truncate(time.Second)
	writer := elastictest.Sample("9yD3kLh4TfWQ2sJ6", "credsync-bot", "logstash writer")
	writer.ExpirationDate = &exp
	s.Put(writer)
	s.Put(elastictest.Sample("Qw8nP1rV5xZc3mB7", "backup-operator", "snapshot backups"))
	return fake{block: "elasticCloud", url: s.URL, caBundle: s.CABundle(), close: s.Close}
}
