// Command apidocs writes the API reference, docs/api.md, from the CRDs in
// config/crd/bases. controller-gen puts the godoc of api/v1alpha1 into the
// CRDs' OpenAPI schemas as descriptions, with the defaults and validations
// of the markers, so the CRDs hold everything the reference says: the page
// is as current as `make manifests` left them.
//
//	go run ./hack/apidocs --crds config/crd/bases --out docs/api.md
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	crds := flag.String("crds", "config/crd/bases", "Directory holding the CRD YAML files.")
	out := flag.String("out", "docs/api.md", "File to write; - for standard output.")
	flag.Parse()
	page, err := render(*crds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apidocs:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(page)
	} else {
		err = os.WriteFile(*out, page, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apidocs:", err)
		os.Exit(1)
	}
}

// crd is the part of a CustomResourceDefinition the reference shows.
type crd struct {
	Kind string `json:"kind"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind       string   `json:"kind"`
			Plural     string   `json:"plural"`
			Singular   string   `json:"singular"`
			ShortNames []string `json:"shortNames"`
			Categories []string `json:"categories"`
		} `json:"names"`
		Scope    string    `json:"scope"`
		Versions []version `json:"versions"`
	} `json:"spec"`
}

type version struct {
	Name       string `json:"name"`
	Served     bool   `json:"served"`
	Storage    bool   `json:"storage"`
	Deprecated bool   `json:"deprecated"`
	Columns    []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		JSONPath string `json:"jsonPath"`
		Priority int    `json:"priority"`
	} `json:"additionalPrinterColumns"`
	Schema struct {
		OpenAPIV3Schema *schema `json:"openAPIV3Schema"`
	} `json:"schema"`
	Subresources map[string]json.RawMessage `json:"subresources"`
}

// schema is an OpenAPI v3 schema as CRDs write it.
type schema struct {
	Description          string             `json:"description"`
	Type                 string             `json:"type"`
	Format               string             `json:"format"`
	Default              json.RawMessage    `json:"default"`
	Enum                 []json.RawMessage  `json:"enum"`
	Pattern              string             `json:"pattern"`
	Minimum              *float64           `json:"minimum"`
	Maximum              *float64           `json:"maximum"`
	ExclusiveMinimum     bool               `json:"exclusiveMinimum"`
	ExclusiveMaximum     bool               `json:"exclusiveMaximum"`
	MinLength            *int64             `json:"minLength"`
	MaxLength            *int64             `json:"maxLength"`
	MinItems             *int64             `json:"minItems"`
	MaxItems             *int64             `json:"maxItems"`
	MinProperties        *int64             `json:"minProperties"`
	MaxProperties        *int64             `json:"maxProperties"`
	Nullable             bool               `json:"nullable"`
	Required             []string           `json:"required"`
	Properties           map[string]*schema `json:"properties"`
	Items                *schema            `json:"items"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	IntOrString          bool               `json:"x-kubernetes-int-or-string"`
	PreserveUnknown      bool               `json:"x-kubernetes-preserve-unknown-fields"`
	EmbeddedResource     bool               `json:"x-kubernetes-embedded-resource"`
	ListType             string             `json:"x-kubernetes-list-type"`
	ListMapKeys          []string           `json:"x-kubernetes-list-map-keys"`
	MapType              string             `json:"x-kubernetes-map-type"`
	Validations          []struct {
		Rule              string `json:"rule"`
		Message           string `json:"message"`
		MessageExpression string `json:"messageExpression"`
	} `json:"x-kubernetes-validations"`
}

// kindOrder is the order of the kinds on the page; others follow by name.
var kindOrder = []string{"RemoteCredential", "CredentialProvider", "ClusterCredentialProvider"}

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

// loadCRDs reads every CRD in the YAML files of dir.
func loadCRDs(dir string) ([]crd, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var crds []crd
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			js, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", f, i, err)
			}
			var c crd
			if err := json.Unmarshal(js, &c); err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", f, i, err)
			}
			if c.Kind == "CustomResourceDefinition" {
				crds = append(crds, c)
			}
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinition in %s/*.yaml", dir)
	}
	rank := func(kind string) int {
		for i, k := range kindOrder {
			if k == kind {
				return i
			}
		}
		return len(kindOrder)
	}
	sort.SliceStable(crds, func(i, j int) bool {
		a, b := crds[i].Spec.Names.Kind, crds[j].Spec.Names.Kind
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		return a < b
	})
	return crds, nil
}

// render returns the reference page for the CRDs in dir.
func render(dir string) ([]byte, error) {
	crds, err := loadCRDs(dir)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`<!-- Generated by hack/apidocs from config/crd/bases: do not edit. Run make api-docs. -->
# API reference

Every kind, field, default and validation of the credsync API, generated
from the CustomResourceDefinitions in ` + "`config/crd/bases`" + `, whose
descriptions are the godoc of ` + "`api/v1alpha1`" + `. ` + "`kubectl explain`" + ` shows the same
text in a cluster, for example ` + "`kubectl explain remotecredential.spec`" + `.

After changing the API types, run ` + "`make manifests api-docs`" + `;
` + "`make verify-api-docs`" + ` fails when this page is out of date.

See also: [the docs index](README.md), [troubleshooting](troubleshooting.md)
(what each condition reason means), [security](security.md).

`)
	for _, c := range crds {
		fmt.Fprintf(&b, "- [%s](#%s)\n", c.Spec.Names.Kind, strings.ToLower(c.Spec.Names.Kind))
	}
	b.WriteString("\nField paths use `.` for nested objects and `[]` for the items of a list.\n" +
		"Required means the field must be set when its parent is set.\n")
	for _, c := range crds {
		if err := renderKind(&b, c); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

func renderKind(b *bytes.Buffer, c crd) error {
	n := c.Spec.Names
	fmt.Fprintf(b, "\n## %s\n\n", n.Kind)
	for _, v := range c.Spec.Versions {
		if v.Storage && v.Schema.OpenAPIV3Schema != nil {
			if d := v.Schema.OpenAPIV3Schema.Description; d != "" {
				fmt.Fprintf(b, "%s\n\n", text(d))
			}
		}
	}
	var versions []string
	for _, v := range c.Spec.Versions {
		s := code(c.Spec.Group + "/" + v.Name)
		var notes []string
		if v.Storage {
			notes = append(notes, "storage")
		}
		if !v.Served {
			notes = append(notes, "not served")
		}
		if v.Deprecated {
			notes = append(notes, "deprecated")
		}
		if len(notes) > 0 {
			s += " (" + strings.Join(notes, ", ") + ")"
		}
		versions = append(versions, s)
	}
	var shortNames []string
	for _, s := range n.ShortNames {
		if builtin, ok := builtinShortNames[s]; ok {
			shortNames = append(shortNames, fmt.Sprintf("%s (kubectl resolves it to the built-in %s, not to this kind)", code(s), code(builtin)))
			continue
		}
		shortNames = append(shortNames, code(s))
	}
	fmt.Fprintf(b, "| | |\n| --- | --- |\n")
	fmt.Fprintf(b, "| API version | %s |\n", strings.Join(versions, ", "))
	fmt.Fprintf(b, "| Scope | %s |\n", c.Spec.Scope)
	fmt.Fprintf(b, "| Resource | %s (singular %s) |\n", code(n.Plural+"."+c.Spec.Group), code(n.Singular))
	fmt.Fprintf(b, "| Short names | %s |\n", orNone(strings.Join(shortNames, ", ")))
	fmt.Fprintf(b, "| Categories | %s |\n", orNone(joinCode(n.Categories)))

	for _, v := range c.Spec.Versions {
		suffix := ""
		if len(c.Spec.Versions) > 1 {
			suffix = " (" + v.Name + ")"
		}
		var subs []string
		for s := range v.Subresources {
			subs = append(subs, s)
		}
		sort.Strings(subs)
		if len(subs) > 0 {
			fmt.Fprintf(b, "| Subresources%s | %s |\n", suffix, joinCode(subs))
		}
	}

	for _, v := range c.Spec.Versions {
		suffix := ""
		if len(c.Spec.Versions) > 1 {
			suffix = " (" + v.Name + ")"
		}
		if len(v.Columns) > 0 {
			fmt.Fprintf(b, "\n### %s printer columns%s\n\n", n.Kind, suffix)
			fmt.Fprintf(b, "What `kubectl get %s` shows.\n\n", n.Plural)
			b.WriteString("| Column | Type | JSONPath | Shown |\n| --- | --- | --- | --- |\n")
			for _, col := range v.Columns {
				shown := "always"
				if col.Priority > 0 {
					shown = "with `-o wide`"
				}
				fmt.Fprintf(b, "| %s | %s | %s | %s |\n", cell(col.Name), col.Type, code(col.JSONPath), shown)
			}
		}
		root := v.Schema.OpenAPIV3Schema
		if root == nil {
			return fmt.Errorf("%s %s has no OpenAPI schema", n.Kind, v.Name)
		}
		fmt.Fprintf(b, "\n### %s fields%s\n\n", n.Kind, suffix)
		b.WriteString("| Field | Type | Required | Default | Validation | Description |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, top := range []string{"spec", "status"} {
			if s, ok := root.Properties[top]; ok {
				writeFields(b, top, s, contains(root.Required, top))
			}
		}
	}
	return nil
}

// writeFields writes the row of the field at path, then its children.
func writeFields(b *bytes.Buffer, path string, s *schema, required bool) {
	req := ""
	if required {
		req = "yes"
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n",
		code(path), typeName(s), req, defaultValue(s.Default), validation(s), cell(text(s.Description)))
	children, prefix := s, path
	if s.Type == "array" && s.Items != nil {
		children, prefix = s.Items, path+"[]"
		if len(s.Items.Properties) == 0 {
			return
		}
	}
	names := make([]string, 0, len(children.Properties))
	for name := range children.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		writeFields(b, prefix+"."+name, children.Properties[name], contains(children.Required, name))
	}
}

func typeName(s *schema) string {
	switch {
	case s.IntOrString:
		return "integer or string"
	case s.Type == "array" && s.Items != nil:
		return "[]" + typeName(s.Items)
	case s.Type == "object" && len(s.AdditionalProperties) > 0 && string(s.AdditionalProperties) != "false":
		var ap schema
		if json.Unmarshal(s.AdditionalProperties, &ap) == nil && ap.Type != "" {
			return "map[string]" + typeName(&ap)
		}
		return "map"
	case s.Type == "":
		return "any"
	}
	t := s.Type
	switch s.Format {
	case "":
	case "byte":
		t += " (base64)"
	default:
		t += " (" + s.Format + ")"
	}
	if s.Nullable {
		t += ", nullable"
	}
	return t
}

func defaultValue(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return code(str)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return code(string(raw))
	}
	return code(buf.String())
}

// validation lists a field's constraints, one per line of the cell.
func validation(s *schema) string {
	var v []string
	if len(s.Enum) > 0 {
		var values []string
		for _, e := range s.Enum {
			values = append(values, strings.TrimSpace(defaultValue(e)))
		}
		v = append(v, "one of "+strings.Join(values, ", "))
	}
	if s.Pattern != "" {
		v = append(v, "pattern "+code(s.Pattern))
	}
	if r := bounds("length", s.MinLength, s.MaxLength); r != "" {
		v = append(v, r)
	}
	if r := bounds("items", s.MinItems, s.MaxItems); r != "" {
		v = append(v, r)
	}
	if r := bounds("properties", s.MinProperties, s.MaxProperties); r != "" {
		v = append(v, r)
	}
	if s.Minimum != nil && s.Maximum != nil && !s.ExclusiveMinimum && !s.ExclusiveMaximum {
		v = append(v, "value "+number(*s.Minimum)+"–"+number(*s.Maximum))
	} else if s.Minimum != nil {
		op := "≥"
		if s.ExclusiveMinimum {
			op = ">"
		}
		v = append(v, "value "+op+" "+number(*s.Minimum))
	}
	if s.Maximum != nil && (s.Minimum == nil || s.ExclusiveMinimum || s.ExclusiveMaximum) {
		op := "≤"
		if s.ExclusiveMaximum {
			op = "<"
		}
		v = append(v, "value "+op+" "+number(*s.Maximum))
	}
	switch s.ListType {
	case "":
	case "map":
		v = append(v, "list keyed by "+joinCode(s.ListMapKeys))
	case "set":
		v = append(v, "list of unique items")
	}
	if s.MapType == "atomic" || s.ListType == "atomic" {
		v = append(v, "replaced as a whole")
	}
	for _, x := range s.Validations {
		rule := "rule " + code(x.Rule)
		switch {
		case x.Message != "":
			rule += ": " + cell(x.Message)
		case x.MessageExpression != "":
			rule += ": message " + code(x.MessageExpression)
		}
		v = append(v, rule)
	}
	return strings.Join(v, "<br>")
}

func bounds(what string, lo, hi *int64) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("%s %d–%d", what, *lo, *hi)
	case lo != nil:
		return fmt.Sprintf("%s ≥ %d", what, *lo)
	case hi != nil:
		return fmt.Sprintf("%s ≤ %d", what, *hi)
	}
	return ""
}

func number(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// text folds a description's lines into one paragraph.
func text(s string) string { return strings.Join(strings.Fields(s), " ") }

// cell escapes text for a Markdown table cell: a pipe would end the cell,
// < start an HTML tag, * emphasis, a backtick code.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", "*", `\*`, "`", "\\`").Replace(s)
}

// code writes s as inline code, safe inside a table cell.
func code(s string) string {
	s = strings.NewReplacer("\n", " ", "|", `\|`).Replace(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func joinCode(items []string) string {
	var out []string
	for _, i := range items {
		out = append(out, code(i))
	}
	return strings.Join(out, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
