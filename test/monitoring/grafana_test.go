package monitoring

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// contractMetrics are the metrics credsync promises (API.md); the
// dashboard may use nothing else.
var contractMetrics = []string{
	"credsync_credential_ready",
	"credsync_credential_expiration_timestamp_seconds",
	"credsync_credential_expiring",
	"credsync_credential_last_sync_timestamp_seconds",
	"credsync_credential_refresh_interval_seconds",
	"credsync_vendor_requests_total",
	"credsync_vendor_request_duration_seconds",
	"credsync_inventory_credentials",
	"credsync_inventory_up",
	"credsync_inventory_last_sweep_timestamp_seconds",
}

// unusedOnDashboard are contract metrics the dashboard need not show.
var unusedOnDashboard = map[string]bool{"credsync_credential_refresh_interval_seconds": true}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string             `json:"name"`
			Type       string             `json:"type"`
			Multi      bool               `json:"multi"`
			Datasource *grafanaDatasource `json:"datasource"`
			// Query is a string for a datasource variable, an object
			// holding the PromQL for a Prometheus query variable.
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int                      `json:"id"`
		Type       string                   `json:"type"`
		Title      string                   `json:"title"`
		Datasource *grafanaDatasource       `json:"datasource"`
		GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
		Targets    []struct {
			RefID      string             `json:"refId"`
			Expr       string             `json:"expr"`
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	var d grafanaDashboard
	if err := json.Unmarshal(readRepoFile(t, "config", "grafana", "credsync-dashboard.json"), &d); err != nil {
		t.Fatalf("credsync-dashboard.json: %v", err)
	}
	return d
}

// variableQuery returns the PromQL of a query variable.
func variableQuery(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatalf("variable query %s: %v", raw, err)
	}
	return q.Query
}

func TestGrafanaDashboardPanels(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want both set and schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if other, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("panel %q: id %d is not positive or also used by %q", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			// A row only groups the panels below it.
			if len(p.Targets) != 0 || p.GridPos.W != 24 {
				t.Errorf("row %q: %d targets, width %d; want none and the full width", p.Title, len(p.Targets), p.GridPos.W)
			}
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		// Every query goes to the data source the user picked, never a
		// UID from the cluster this was drawn on.
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q, target %q: empty expr", p.Title, tg.RefID)
			}
			if tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("panel %q: refId %q is empty or repeated", p.Title, tg.RefID)
			}
			refIDs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q, target %q: datasource uid %q, want ${datasource}", p.Title, tg.RefID, tg.Datasource.UID)
			}
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit the 24-column grid", p.Title, g)
		}
	}
}

func TestGrafanaDashboardVariables(t *testing.T) {
	d := loadDashboard(t)
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Name {
		case "datasource":
			if v.Type != "datasource" || variableQuery(t, v.Query) != "prometheus" {
				t.Errorf("variable datasource: type %q, query %s; want a datasource variable of type prometheus", v.Type, v.Query)
			}
		case "namespace", "vendor":
			q := variableQuery(t, v.Query)
			if v.Type != "query" || !v.Multi || !strings.HasPrefix(q, "label_values(") {
				t.Errorf("variable %s: type %q, multi %v, query %q; want a multi-select label_values query", v.Name, v.Type, v.Multi, q)
			}
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("variable %s: datasource %+v, want uid ${datasource}", v.Name, v.Datasource)
			}
		}
	}
	for _, name := range []string{"datasource", "namespace", "vendor"} {
		if !vars[name] {
			t.Errorf("no %s variable", name)
		}
	}
	// Every $variable a query uses is defined (or one of Grafana's own).
	ref := regexp.MustCompile(`\$\{?(\w+)`)
	builtin := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	for _, expr := range dashboardQueries(t, d) {
		for _, m := range ref.FindAllStringSubmatch(expr, -1) {
			if !vars[m[1]] && !builtin[m[1]] {
				t.Errorf("query uses undefined variable $%s: %s", m[1], expr)
			}
		}
		if !balanced(expr) {
			t.Errorf("unbalanced brackets or quotes: %s", expr)
		}
	}
}

func TestGrafanaDashboardMetrics(t *testing.T) {
	d := loadDashboard(t)
	contract := map[string]bool{}
	for _, m := range contractMetrics {
		contract[m] = true
	}
	metric := regexp.MustCompile(`credsync_[a-z_]+`)
	histogram := regexp.MustCompile(`_(bucket|sum|count)$`)
	used := map[string]bool{}
	for _, expr := range dashboardQueries(t, d) {
		for _, name := range metric.FindAllString(expr, -1) {
			if !contract[name] {
				name = histogram.ReplaceAllString(name, "")
			}
			if !contract[name] {
				t.Errorf("query uses %s, which is not a credsync metric: %s", name, expr)
			}
			used[name] = true
		}
	}
	for _, m := range contractMetrics {
		if !used[m] && !unusedOnDashboard[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

func TestGrafanaKustomization(t *testing.T) {
	var k struct {
		ConfigMapGenerator []struct {
			Name    string   `json:"name"`
			Files   []string `json:"files"`
			Options struct {
				DisableNameSuffixHash bool              `json:"disableNameSuffixHash"`
				Labels                map[string]string `json:"labels"`
			} `json:"options"`
		} `json:"configMapGenerator"`
	}
	if err := yaml.UnmarshalStrict(readRepoFile(t, "config", "grafana", "kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	if len(k.ConfigMapGenerator) != 1 {
		t.Fatalf("%d configMapGenerator entries, want 1", len(k.ConfigMapGenerator))
	}
	g := k.ConfigMapGenerator[0]
	if g.Name != "credsync-grafana-dashboard" || !g.Options.DisableNameSuffixHash || g.Options.Labels["grafana_dashboard"] != "1" {
		t.Errorf("generator %q, disableNameSuffixHash %v, labels %v; want credsync-grafana-dashboard, true, grafana_dashboard=1",
			g.Name, g.Options.DisableNameSuffixHash, g.Options.Labels)
	}
	if len(g.Files) != 1 || g.Files[0] != "credsync-dashboard.json" {
		t.Errorf("files %v, want [credsync-dashboard.json]", g.Files)
	}
}

// dashboardQueries returns every PromQL string of the dashboard: panel
// targets and variable queries.
func dashboardQueries(t *testing.T, d grafanaDashboard) []string {
	t.Helper()
	var qs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			qs = append(qs, variableQuery(t, v.Query))
		}
	}
	return qs
}

// balanced reports whether the brackets of a PromQL expression pair up,
// outside double-quoted strings, and every string is closed.
func balanced(expr string) bool {
	closing := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var stack []rune
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case closing[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != closing[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return !inString && len(stack) == 0
}
