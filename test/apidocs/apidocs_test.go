// Package apidocs checks the API reference, docs/api.md, against the CRDs
// in config/crd/bases. crd-ref-docs renders the page from the Go types in
// api/ (make api-docs, with the templates of hack/api-docs) and
// controller-gen writes the CRDs from the same types (make manifests), so
// the two must agree: every kind with its resource names, scope and printer
// columns, and every field with its type, whether it is required, its
// default, its validations and its description.
package apidocs

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	pagePath = "../../docs/api.md"
	crdDir   = "../../config/crd/bases"
)

// builtinShortNames are short names of built-in resources. kubectl tries
// built-in API groups before those of CRDs, so a CRD short name that is
// also one of these never reaches the CRD.
var builtinShortNames = map[string]string{
	"cm": "configmaps", "cj": "cronjobs", "crd": "customresourcedefinitions", "crds": "customresourcedefinitions",
	"cs": "componentstatuses", "csr": "certificatesigningrequests", "deploy": "deployments", "ds": "daemonsets",
	"ep": "endpoints", "ev": "events", "hpa": "horizontalpodautoscalers", "ing": "ingresses",
	"limits": "limitranges", "netpol": "networkpolicies", "no": "nodes", "ns": "namespaces",
	"pc": "priorityclasses", "pdb": "poddisruptionbudgets", "po": "pods", "pv": "persistentvolumes",
	"pvc": "persistentvolumeclaims", "quota": "resourcequotas", "rc": "replicationcontrollers",
	"rs": "replicasets", "sa": "serviceaccounts", "sc": "storageclasses", "sts": "statefulsets",
	"svc": "services",
}

func TestPageMatchesCRDs(t *testing.T) {
	p := parsePage(readPage(t))
	for _, crd := range loadCRDs(t) {
		for _, problem := range check(p, crd) {
			t.Error(problem)
		}
	}
}

func TestShortNamesAreNotBuiltin(t *testing.T) {
	for _, crd := range loadCRDs(t) {
		for _, s := range crd.Spec.Names.ShortNames {
			if builtin, ok := builtinShortNames[s]; ok {
				t.Errorf("%s: short name %q is the built-in %s's: kubectl resolves it to %s, never to this kind", crd.Spec.Names.Kind, s, builtin, builtin)
			}
		}
	}
}

// TestKnownFields pins what the page says of a few fields, as a reader
// sees it: cells are field (with its type), description, default and
// validation.
func TestKnownFields(t *testing.T) {
	p := parsePage(readPage(t))
	tests := []struct {
		section, field, typ, def, validation, description string
	}{
		{"RemoteCredentialSpec", "refreshInterval", "string (duration)", "`1h`", "", "how often the vendor is asked again"},
		{"RemoteCredentialSpec", "expiryWarning", "string (duration)", "`720h`", "", "Expiring condition"},
		{"ProviderReference", "kind", "string", "`CredentialProvider`", "one of `CredentialProvider`, `ClusterCredentialProvider`", "Kind of the provider"},
		{"RemoteCredentialSpec", "id", "string", "", "Required<br />pattern `^[A-Za-z0-9._~:@-]+$`<br />length 1–256", "vendor's ID"},
		{"RemoteCredential", "spec", "[RemoteCredentialSpec](#remotecredentialspec)", "", "Required", "names the credential"},
		{"RemoteCredential", "status", "[RemoteCredentialStatus](#remotecredentialstatus)", "`{ observedGeneration:0 }`", "", "kstatus"},
		{"RemoteCredentialStatus", "conditions", "array", "", "list keyed by `type`", "Ready, Expiring, Unused, Stalled, Reconciling"},
		{"CredentialProvider", "spec", "[CredentialProviderSpec](#credentialproviderspec)", "", "Required", "how to authenticate"},
		{"SecretKeySelector", "key", "string", "`apiKey`", "length 1–253", "Key in the Secret"},
		{"RateLimit", "requestsPerMinute", "integer (int32)", "", "value 1–1000000", "sustained rate"},
		{"CredentialProviderSpec", "caBundle", "string (base64)", "", "", "PEM-encoded"},
		{"PlainIDInventory", "ownerIds", "string array", "", "Required<br />items 1–100<br />each item's length 1–256<br />list of unique items", "environment IDs"},
		{"CredentialProviderStatus", "conditions", "array", "", "list keyed by `type`", "Ready is True"},
		{"ElasticCloudProvider", "apiKeySecretRef", "[SecretKeySelector](#secretkeyselector)", "", "Required", `"Authorization: ApiKey &lt;key>"`},
	}
	for _, tc := range tests {
		r, ok := p[tc.section].rows[tc.field]
		if !ok {
			t.Errorf("%s: no row for %s", tc.section, tc.field)
			continue
		}
		if !strings.Contains(r.typ, tc.typ) || r.def != tc.def {
			t.Errorf("%s.%s: type, default = %q, %q; want %q in the type, %q", tc.section, tc.field, r.typ, r.def, tc.typ, tc.def)
		}
		if !strings.Contains(r.validation, tc.validation) {
			t.Errorf("%s.%s: validation %q does not contain %q", tc.section, tc.field, r.validation, tc.validation)
		}
		if !strings.Contains(r.description, tc.description) {
			t.Errorf("%s.%s: description %q does not contain %q", tc.section, tc.field, r.description, tc.description)
		}
	}
	for section, want := range map[string][]string{
		"ClusterCredentialProvider": {"| API version | `credsync.io/v1alpha1` |", "| Scope | Cluster |", "| Short names | `ccp` |"},
		"RemoteCredential": {
			"| Short names | `rcred` |",
			"| Expires | string | `.status.expiresAt` | always |",
			"| Vendor Name | string | `.status.name` | with `-o wide` |",
		},
		// A ClusterCredentialProviderSpec inlines a CredentialProviderSpec:
		// its CEL rules too.
		"ClusterCredentialProviderSpec": {"- rule `[has(self.tines), has(self.elasticCloud), has(self.plainid), has(self.http)].filter(x, x).size() == 1`: exactly one vendor block (tines, elasticCloud, plainid, http) must be set"},
		"RemoteCredentialSpec":          {"- rule `!has(self.refreshInterval) || duration(self.refreshInterval) >= duration('10s')`: refreshInterval must be at least 10s"},
	} {
		for _, w := range want {
			if !strings.Contains(p[section].text, w) {
				t.Errorf("section %s lacks %q", section, w)
			}
		}
	}
}

// TestCheckCatches makes sure check fails on pages that are wrong in each
// way it looks for.
func TestCheckCatches(t *testing.T) {
	text := readPage(t)
	crds := loadCRDs(t)
	for _, tc := range []struct{ name, old, new string }{
		{"a field is missing", "| `burst` _integer (int32)_ |", "| `burstiness` _integer (int32)_ |"},
		{"a default differs", "| `1h` |", "| `2h` |"},
		{"a field is no longer required", "|  | Required<br />length 1–253 |", "|  | length 1–253 |"},
		{"a bound is lost", "value 1–1024", "value 1–1023"},
		{"an enum value is lost", "one of `CredentialProvider`, `ClusterCredentialProvider`", "one of `CredentialProvider`"},
		{"a field rule is lost", "<br />rule `self != '.' && self != '..'`: id must not be . or ..", ""},
		{"a type rule is lost", "- rule `has(self.region) || has(self.url)`: one of region or url must be set", ""},
		{"a pipe is not escaped", "pattern `^[a-z0-9]", "pattern `^[a-z0-9]|"},
		{"a description differs", "Name of the provider.", "Name of a provider."},
		{"a < is not escaped", "ApiKey &lt;key>", "ApiKey <key>"},
		{"a type differs", "| `caBundle` _string (base64)_ |", "| `caBundle` _integer array_ |"},
		{"a printer column is lost", "| Vendor Name | string | `.status.name` | with `-o wide` |\n", ""},
		{"a printer column is shown by default", "| Vendor Name | string | `.status.name` | with `-o wide` |", "| Vendor Name | string | `.status.name` | always |"},
		{"the scope differs", "| Scope | Cluster |", "| Scope | Namespaced |"},
		{"a short name differs", "| Short names | `rcred` |", "| Short names | `rc` |"},
		{"a kind is missing", "#### CredentialProvider\n", "#### CredentialProviders\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(text, tc.old) {
				t.Fatalf("the page has no %q to change", tc.old)
			}
			p := parsePage(strings.Replace(text, tc.old, tc.new, 1))
			var problems []string
			for _, crd := range crds {
				problems = append(problems, check(p, crd)...)
			}
			if len(problems) == 0 {
				t.Fatalf("no problem found after replacing %q with %q", tc.old, tc.new)
			}
			t.Logf("found: %s", problems[0])
		})
	}
}

// loadCRDs reads the CRDs of crdDir as envtest does, by name, and fails
// the test if there are none.
func loadCRDs(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	opts := envtest.CRDInstallOptions{Paths: []string{crdDir}, ErrorIfPathMissing: true}
	if err := envtest.ReadCRDFiles(&opts); err != nil || len(opts.CRDs) == 0 {
		t.Fatalf("CustomResourceDefinitions in %s: %d, %v", crdDir, len(opts.CRDs), err)
	}
	slices.SortFunc(opts.CRDs, func(a, b *apiextensionsv1.CustomResourceDefinition) int { return strings.Compare(a.Name, b.Name) })
	return opts.CRDs
}

func readPage(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(pagePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// page is docs/api.md cut into the sections of its types ("#### Name"),
// by name.
type page map[string]section

type section struct {
	name string
	// text is the whole section; rules are the CEL rules of its
	// "_Validation:_" list, as "rule `...`: message".
	text  string
	rules []string
	// rows are the rows of its field table by field name; bad are the
	// table rows that do not have four cells.
	rows map[string]row
	bad  []string
}

type row struct {
	typ, description, def, validation string
}

// cellSep is a pipe that ends a table cell: one not escaped as \|.
var cellSep = regexp.MustCompile(`(^|[^\\])\|`)

// fieldCell is a field table's first cell: `name` _type_.
var fieldCell = regexp.MustCompile("^`([^`]+)` _(.*)_$")

func parsePage(text string) page {
	p := page{}
	for _, part := range strings.Split(text, "\n#### ")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		s := section{name: name, text: body, rows: map[string]row{}}
		inRules := false
		for _, line := range strings.Split(body, "\n") {
			switch {
			case line == "_Validation:_":
				inRules = true
			case inRules && strings.HasPrefix(line, "- "):
				s.rules = append(s.rules, strings.TrimPrefix(line, "- "))
			case strings.HasPrefix(line, "| `"):
				inRules = false
				cells := splitRow(line)
				var m []string
				if len(cells) == 4 {
					m = fieldCell.FindStringSubmatch(cells[0])
				}
				if m == nil {
					s.bad = append(s.bad, line)
					continue
				}
				s.rows[m[1]] = row{typ: m[2], description: cells[1], def: cells[2], validation: cells[3]}
			default:
				inRules = false
			}
		}
		p[name] = s
	}
	return p
}

// splitRow returns the cells of a Markdown table row.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "|"), "|")
	cells := strings.Split(cellSep.ReplaceAllString(line, "$1\x00"), "\x00")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// check returns what the page gets wrong about crd, or leaves out.
func check(p page, crd *apiextensionsv1.CustomResourceDefinition) []string {
	var problems []string
	problemf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	n := crd.Spec.Names
	s, ok := p[n.Kind]
	if !ok {
		return []string{fmt.Sprintf("no section for kind %s", n.Kind)}
	}
	for _, v := range crd.Spec.Versions {
		if v.Served {
			wantLine(s, problemf, fmt.Sprintf("| API version | `%s/%s` |", crd.Spec.Group, v.Name))
		}
	}
	wantLine(s, problemf, fmt.Sprintf("| Scope | %s |", crd.Spec.Scope))
	wantLine(s, problemf, fmt.Sprintf("| Resource | `%s.%s` (singular `%s`) |", n.Plural, crd.Spec.Group, n.Singular))
	wantLine(s, problemf, fmt.Sprintf("| Short names | %s |", codes(n.ShortNames)))
	wantLine(s, problemf, fmt.Sprintf("| Categories | %s |", codes(n.Categories)))
	for _, v := range crd.Spec.Versions {
		if !v.Storage {
			continue
		}
		if v.Subresources != nil && v.Subresources.Status != nil {
			wantLine(s, problemf, "| Subresources | `status`")
		}
		columns := 0
		for _, line := range strings.Split(s.text, "\n") {
			if strings.HasSuffix(line, "| always |") || strings.HasSuffix(line, "| with `-o wide` |") {
				columns++
			}
		}
		if columns != len(v.AdditionalPrinterColumns) {
			problemf("%s: %d printer columns on the page, %d in the CRD", n.Kind, columns, len(v.AdditionalPrinterColumns))
		}
		for _, c := range v.AdditionalPrinterColumns {
			shown := "always"
			if c.Priority > 0 {
				shown = "with `-o wide`"
			}
			wantLine(s, problemf, fmt.Sprintf("| %s | %s | `%s` | %s |", c.Name, c.Type, c.JSONPath, shown))
		}
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			problemf("%s %s has no OpenAPI schema", n.Kind, v.Name)
			continue
		}
		c := checker{page: p, problemf: problemf, group: crd.Spec.Group + "/" + v.Name, kind: n.Kind}
		c.object(n.Kind, n.Kind, v.Schema.OpenAPIV3Schema, nil)
	}
	return problems
}

func wantLine(s section, problemf func(string, ...any), line string) {
	if !strings.Contains(s.text, line) {
		problemf("section %s lacks %q", s.name, line)
	}
}

func codes(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	var out []string
	for _, i := range items {
		out = append(out, "`"+i+"`")
	}
	return strings.Join(out, ", ")
}

type checker struct {
	page        page
	problemf    func(string, ...any)
	group, kind string
}

// object checks the section of the type whose schema s is, at path: a row
// for each property of s and none for properties s does not have, and the
// CEL rules of s in the section's list or in the field's cell (fieldRules).
func (c checker) object(path, name string, s *apiextensionsv1.JSONSchemaProps, fieldRules []string) {
	sec, ok := c.page[name]
	if !ok {
		c.problemf("%s: no section %s", path, name)
		return
	}
	for _, line := range sec.bad {
		c.problemf("%s: a row of section %s has not four cells (an unescaped |?): %s", path, name, line)
	}
	for _, x := range s.XValidations {
		want := rule(x)
		if !slices.Contains(sec.rules, want) && !slices.Contains(fieldRules, want) {
			c.problemf("%s: rule %q is neither in section %s nor at the field", path, want, name)
		}
	}
	for field := range sec.rows {
		if _, ok := s.Properties[field]; !ok {
			c.problemf("%s: section %s has field %s, the CRD has not", path, name, field)
		}
	}
	for _, field := range slices.Sorted(maps.Keys(s.Properties)) {
		r, ok := sec.rows[field]
		if !ok {
			c.problemf("%s.%s: no row in section %s", path, field, name)
			continue
		}
		prop := s.Properties[field]
		c.field(path+"."+field, path == c.kind, field, r, &prop, slices.Contains(s.Required, field))
	}
}

// localLink is a link to a section of the page: [Name](#name).
var localLink = regexp.MustCompile(`^\[(\w+)\]\(#(\w+)\)`)

// kubeLink is a link to a type of the Kubernetes API reference.
var kubeLink = regexp.MustCompile(`^\[\w+\]\(https://kubernetes\.io/docs/reference/generated/kubernetes-api/[^)]+\)`)

func (c checker) field(path string, top bool, name string, r row, s *apiextensionsv1.JSONSchemaProps, required bool) {
	if gotRequired := strings.HasPrefix(r.validation, "Required"); gotRequired != required {
		c.problemf("%s: required is %v on the page, %v in the CRD", path, gotRequired, required)
	}
	c.typ(path, r.typ, s)
	c.defaultValue(path, r.def, s)
	c.description(path, top, name, r, s)
	cellRules := c.validation(path, r, s)

	target := s
	if s.Type == "array" && s.Items != nil && s.Items.Schema != nil {
		target = s.Items.Schema
	}
	m := localLink.FindStringSubmatch(r.typ)
	if m == nil {
		// No section of its own: the field's cell has its rules.
		for _, x := range s.XValidations {
			if want := rule(x); !slices.Contains(cellRules, want) {
				c.problemf("%s: validation %q on the page lacks %q", path, r.validation, want)
			}
		}
	}
	switch {
	case m != nil:
		if len(target.Properties) == 0 {
			c.problemf("%s: the page links to section %s, the CRD has no fields there", path, m[1])
			return
		}
		c.object(path, m[1], target, cellRules)
	case kubeLink.MatchString(r.typ):
		// A Kubernetes type: its fields are documented at the link.
	case len(target.Properties) > 0:
		c.problemf("%s: the CRD has fields under it, the page links to no section for them: %q", path, r.typ)
	}
}

// typ checks the type of a field as the page writes it: the wire type,
// with the format in parentheses; a link for an object; "... array".
func (c checker) typ(path, typ string, s *apiextensionsv1.JSONSchemaProps) {
	linked := localLink.MatchString(typ) || kubeLink.MatchString(typ)
	var ok bool
	switch {
	case s.XIntOrString:
		ok = true
	case s.Type == "array":
		ok = strings.HasSuffix(typ, " array")
		if ok && s.Items != nil && s.Items.Schema != nil && s.Items.Schema.Type != "object" {
			ok = typ == scalar(s.Items.Schema)+" array"
		}
	case s.Type == "object":
		ok = linked || strings.HasPrefix(typ, "object")
	default:
		// A Kubernetes type with a custom wire form (metav1.Time) links
		// to its reference.
		ok = typ == scalar(s) || kubeLink.MatchString(typ)
	}
	if !ok {
		c.problemf("%s: type %q on the page, the CRD's is %s", path, typ, scalar(s))
	}
}

func scalar(s *apiextensionsv1.JSONSchemaProps) string {
	switch s.Format {
	case "":
		return s.Type
	case "byte":
		return s.Type + " (base64)"
	}
	return s.Type + " (" + s.Format + ")"
}

func (c checker) defaultValue(path, cell string, s *apiextensionsv1.JSONSchemaProps) {
	if s.Default == nil {
		if cell != "" {
			c.problemf("%s: default %s on the page, none in the CRD", path, cell)
		}
		return
	}
	var v any
	if err := json.Unmarshal(s.Default.Raw, &v); err != nil {
		c.problemf("%s: default %s: %v", path, s.Default.Raw, err)
		return
	}
	switch v := v.(type) {
	case map[string]any:
		// crd-ref-docs writes an object as the marker does: { key:value }.
		for key, val := range v {
			if !strings.Contains(cell, fmt.Sprintf("%s:%v", key, val)) {
				c.problemf("%s: default %s on the page lacks %s: %v", path, cell, key, val)
			}
		}
	default:
		if want := fmt.Sprintf("`%v`", v); cell != want {
			c.problemf("%s: default %s on the page, %s in the CRD", path, cell, want)
		}
	}
}

// description checks the field's description against the CRD's: the page
// breaks lines with <br /> and escapes |, { and } (crd-ref-docs) and <
// (hack/api-docs), which a reader does not see.
func (c checker) description(path string, top bool, name string, r row, s *apiextensionsv1.JSONSchemaProps) {
	// A kind's apiVersion and kind are its own; metadata links to Kubernetes.
	fixed := map[string]string{"apiVersion": "`" + c.group + "`", "kind": "`" + c.kind + "`", "metadata": r.description}
	if want, ok := fixed[name]; top && ok {
		if r.description != want {
			c.problemf("%s: %s on the page, want %s", path, r.description, want)
		}
		return
	}
	text := strings.ReplaceAll(r.description, "<br />", " ")
	if strings.Contains(text, "<") {
		c.problemf("%s: description has an unescaped <, which hides text as an HTML tag: %s", path, r.description)
	}
	text = strings.NewReplacer(`\|`, "|", `\{`, "{", `\}`, "}", "&lt;", "<").Replace(text)
	if got, want := strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(s.Description), " "); got != want {
		c.problemf("%s: description on the page\n\t%s\nin the CRD\n\t%s", path, got, want)
	}
}

// validation checks that the field's cell has every constraint of the CRD's
// schema, and returns the CEL rules of the cell.
func (c checker) validation(path string, r row, s *apiextensionsv1.JSONSchemaProps) []string {
	cell := r.validation
	var want []string
	if len(s.Enum) > 0 {
		var values []string
		for _, e := range s.Enum {
			var v any
			if err := json.Unmarshal(e.Raw, &v); err != nil {
				c.problemf("%s: enum value %s: %v", path, e.Raw, err)
			}
			values = append(values, fmt.Sprintf("`%v`", v))
		}
		want = append(want, "one of "+strings.Join(values, ", "))
	}
	if s.Pattern != "" {
		want = append(want, "pattern `"+strings.ReplaceAll(s.Pattern, "|", `\|`)+"`")
	}
	if s.ExclusiveMinimum || s.ExclusiveMaximum {
		c.problemf("%s: exclusive bounds are not written by hack/api-docs/templates/type.tpl: add them there and here", path)
	}
	want = append(want,
		bounds("length", s.MinLength, s.MaxLength),
		bounds("items", s.MinItems, s.MaxItems),
		bounds("properties", s.MinProperties, s.MaxProperties),
		bounds("value", s.Minimum, s.Maximum))
	if s.Items != nil && s.Items.Schema != nil {
		want = append(want, bounds("each item's length", s.Items.Schema.MinLength, s.Items.Schema.MaxLength))
	}
	if s.XListType != nil {
		switch *s.XListType {
		case "map":
			want = append(want, "list keyed by "+codes(s.XListMapKeys))
		case "set":
			want = append(want, "list of unique items")
		case "atomic":
			want = append(want, "replaced as a whole")
		}
	}
	// The map and struct types of a Kubernetes type are its own, given at
	// the link.
	if s.XMapType != nil && *s.XMapType == "atomic" && !kubeLink.MatchString(r.typ) {
		want = append(want, "replaced as a whole")
	}
	items := strings.Split(cell, "<br />")
	for _, w := range want {
		if w != "" && !slices.Contains(items, w) {
			c.problemf("%s: validation %q on the page lacks %q", path, cell, w)
		}
	}
	var rules []string
	for _, item := range items {
		if strings.HasPrefix(item, "rule `") {
			// In a table cell, the pipes of a rule are escaped.
			rules = append(rules, strings.ReplaceAll(item, `\|`, "|"))
		}
	}
	return rules
}

// rule is a CEL rule as the page writes it.
func rule(x apiextensionsv1.ValidationRule) string {
	s := "rule `" + x.Rule + "`"
	switch {
	case x.Message != "":
		s += ": " + strings.ReplaceAll(x.Message, "<", "&lt;")
	case x.MessageExpression != "":
		s += ": message `" + x.MessageExpression + "`"
	}
	return s
}

// bounds is "what lo–hi", "what ≥ lo", "what ≤ hi" or "".
func bounds[N int64 | float64](what string, lo, hi *N) string {
	num := func(n N) string { return strconv.FormatFloat(float64(n), 'f', -1, 64) }
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("%s %s–%s", what, num(*lo), num(*hi))
	case lo != nil:
		return fmt.Sprintf("%s ≥ %s", what, num(*lo))
	case hi != nil:
		return fmt.Sprintf("%s ≤ %s", what, num(*hi))
	}
	return ""
}
