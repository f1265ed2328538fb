{{- define "type" -}}
{{- $type := .type -}}
{{- $all := .all -}}
{{- if markdownShouldRenderType $type -}}

#### {{ $type.Name }}

{{ if $type.IsAlias }}_Underlying type:_ _{{ markdownRenderTypeLink $type.UnderlyingType  }}_{{ end }}

{{ $type.Doc | replace "<" "&lt;" }}

{{ if $type.GVK -}}
{{ template "resource" $type }}
{{- end }}

{{- /* The rules of this type and of the types whose fields it inlines
(json:",inline"): crd-ref-docs copies their fields (the same *Field, which
eq compares by address), not their markers. */ -}}
{{- $rules := list -}}
{{- range $all -}}
{{- $o := . -}}
{{- $mine := eq $o.Name $type.Name -}}
{{- if $o.Fields -}}
{{- $first := index $o.Fields 0 -}}
{{- range $type.Fields }}{{ if eq . $first }}{{ $mine = true }}{{ end }}{{ end -}}
{{- end -}}
{{- if $mine -}}
{{- range index $o.Markers "kubebuilder:validation:XValidation" }}{{ $rules = append $rules . }}{{ end -}}
{{- end -}}
{{- end -}}
{{ if or $type.Validation $rules -}}
_Validation:_
{{- range $type.Validation }}
- {{ . }}
{{- end }}
{{- range $rules }}
- rule `{{ .Rule }}`{{ with .Message }}: {{ . | replace "<" "&lt;" }}{{ end }}{{ with .MessageExpression }}: message `{{ . }}`{{ end }}
{{- end }}
{{- end }}

{{ if $type.References -}}
_Appears in:_
{{- range $type.SortedReferences }}
- {{ markdownRenderTypeLink . }}
{{- end }}
{{- end }}

{{ if $type.Members -}}
| Field | Description | Default | Validation |
| --- | --- | --- | --- |
{{ if $type.GVK -}}
| `apiVersion` _string_ | `{{ $type.GVK.Group }}/{{ $type.GVK.Version }}` | | |
| `kind` _string_ | `{{ $type.GVK.Kind }}` | | |
{{ end -}}

{{ range $type.Members -}}
| `{{ .Name  }}` _{{ template "fieldType" . }}_ | {{ template "type_members" . }} | {{ with .Default }}`{{ . | replace "|" "\\|" }}`{{ end }} | {{ template "fieldValidation" . }} |
{{ end -}}

{{ end -}}

{{ if $type.EnumValues -}} 
| Field | Description |
| --- | --- |
{{ range $type.EnumValues -}}
| `{{ .Name }}` | {{ markdownRenderFieldDoc .Doc }} |
{{ end -}}
{{ end -}}


{{- end -}}
{{- end -}}

{{- /*
The templates below add what the default type.tpl of crd-ref-docs leaves
out and docs/api.md tells users: a kind's resource names, scope and
printer columns, whether a field is required, CEL rules (XValidation), list
semantics, and the wire type of fields whose Go type is not it.
*/ -}}

{{- /* resource: the facts of a kind's CRD, from its kubebuilder markers. */ -}}
{{- define "resource" -}}
{{- with index .Markers "kubebuilder:resource" -}}
{{ template "resourceTable" (dict "t" $ "r" (index . 0)) }}
{{- else -}}
{{ template "resourceTable" (dict "t" $ "r" (dict)) }}
{{- end -}}
{{- end -}}

{{- define "resourceTable" -}}
{{- $t := .t -}}{{- $r := .r -}}
{{- $plural := $r.Path | default (printf "%ss" (lower $t.Name)) -}}
| | |
| --- | --- |
| API version | `{{ $t.GVK.Group }}/{{ $t.GVK.Version }}` |
| Scope | {{ $r.Scope | default "Namespaced" }} |
| Resource | `{{ $plural }}.{{ $t.GVK.Group }}` (singular `{{ $r.Singular | default (lower $t.Name) }}`) |
| Short names | {{ range $i, $s := $r.ShortName }}{{ if $i }}, {{ end }}`{{ $s }}`{{ else }}none{{ end }} |
| Categories | {{ range $i, $s := $r.Categories }}{{ if $i }}, {{ end }}`{{ $s }}`{{ else }}none{{ end }} |
{{- if index $t.Markers "kubebuilder:subresource:status" }}
| Subresources | `status`{{ if index $t.Markers "kubebuilder:subresource:scale" }}, `scale`{{ end }} |
{{- end }}
{{- with index $t.Markers "kubebuilder:printcolumn" }}

_Printer columns_ (what `kubectl get {{ $plural }}` shows):

| Column | Type | JSONPath | Shown |
| --- | --- | --- | --- |
{{- range . }}
| {{ .Name }} | {{ .Type }} | `{{ .JSONPath | replace "|" "\\|" }}` | {{ if gt .Priority 0 }}with `-o wide`{{ else }}always{{ end }} |
{{- end }}
{{- end }}
{{- end -}}

{{- /* fieldType: the wire type where the Go type differs from it. */ -}}
{{- define "fieldType" -}}
{{- $t := .Type.String -}}
{{- $vt := index .Markers "kubebuilder:validation:Type" -}}
{{- if $vt -}}
{{ index $vt 0 }}{{ with index .Markers "kubebuilder:validation:Format" }} ({{ index . 0 }}){{ end }}
{{- else if eq $t "[]byte" -}}
string (base64)
{{- else if has (trimPrefix "*" $t) (list "int32" "int64") -}}
integer ({{ trimPrefix "*" $t }})
{{- else -}}
{{ markdownRenderType .Type }}
{{- end -}}
{{- end -}}

{{- /* rule: one CEL rule and its message, in a table cell. */ -}}
{{- define "rule" -}}
rule `{{ .Rule | replace "|" "\\|" }}`{{ with .Message }}: {{ . | replace "<" "&lt;" | replace "|" "\\|" }}{{ end }}{{ with .MessageExpression }}: message `{{ . | replace "|" "\\|" }}`{{ end }}
{{- end -}}

{{- /* bounds: "what lo–hi", "what ≥ lo" or "what ≤ hi" for the markers
named min and max of the field's markers m. */ -}}
{{- define "bounds" -}}
{{- $lo := index .m .min -}}{{- $hi := index .m .max -}}
{{- if and $lo $hi -}}{{ .what }} {{ template "number" (index $lo 0) }}–{{ template "number" (index $hi 0) }}
{{- else if $lo -}}{{ .what }} ≥ {{ template "number" (index $lo 0) }}
{{- else if $hi -}}{{ .what }} ≤ {{ template "number" (index $hi 0) }}
{{- end -}}
{{- end -}}

{{- define "number" -}}
{{- $s := printf "%v" . -}}
{{- if contains "e+" $s }}{{ printf "%.0f" . }}{{ else }}{{ $s }}{{ end -}}
{{- end -}}

{{- /* fieldValidation: required, then each constraint, one per line. */ -}}
{{- define "fieldValidation" -}}
{{- $m := .Markers -}}
{{- $br := "" -}}
{{- /* metadata is optional (omitempty), and has no marker to say so. */ -}}
{{- if not (or (eq .Name "metadata") (index $m "optional") (index $m "kubebuilder:validation:Optional") (index $m "k8s:optional")) -}}
Required{{ $br = "<br />" }}
{{- end -}}
{{- with index $m "kubebuilder:validation:Enum" -}}
{{ $br }}one of {{ range $i, $e := index . 0 }}{{ if $i }}, {{ end }}`{{ $e }}`{{ end }}{{ $br = "<br />" }}
{{- end -}}
{{- with index $m "kubebuilder:validation:Pattern" -}}
{{ $br }}pattern `{{ printf "%s" (index . 0) | replace "|" "\\|" }}`{{ $br = "<br />" }}
{{- end -}}
{{- range $b := list
  (list "length" "kubebuilder:validation:MinLength" "kubebuilder:validation:MaxLength")
  (list "items" "kubebuilder:validation:MinItems" "kubebuilder:validation:MaxItems")
  (list "each item's length" "kubebuilder:validation:items:MinLength" "kubebuilder:validation:items:MaxLength")
  (list "properties" "kubebuilder:validation:MinProperties" "kubebuilder:validation:MaxProperties")
  (list "value" "kubebuilder:validation:Minimum" "kubebuilder:validation:Maximum") -}}
{{- if or (index $m (index $b 1)) (index $m (index $b 2)) -}}
{{ $br }}{{ template "bounds" (dict "m" $m "what" (index $b 0) "min" (index $b 1) "max" (index $b 2)) }}{{ $br = "<br />" }}
{{- end -}}
{{- end -}}
{{- with index $m "listType" -}}
{{- $lt := printf "%v" (index . 0) -}}
{{- if eq $lt "map" -}}
{{ $br }}list keyed by {{ range $i, $k := index $m "listMapKey" }}{{ if $i }}, {{ end }}`{{ $k }}`{{ end }}{{ $br = "<br />" }}
{{- else if eq $lt "set" -}}
{{ $br }}list of unique items{{ $br = "<br />" }}
{{- else if eq $lt "atomic" -}}
{{ $br }}replaced as a whole{{ $br = "<br />" }}
{{- end -}}
{{- end -}}
{{- range $k := list "mapType" "structType" -}}
{{- with index $m $k }}{{ if eq (printf "%v" (index . 0)) "atomic" -}}
{{ $br }}replaced as a whole{{ $br = "<br />" }}
{{- end }}{{ end -}}
{{- end -}}
{{- /* A type's rules are listed in its section, not at each field of it. */ -}}
{{- $rules := index $m "kubebuilder:validation:XValidation" -}}
{{- if not (deepEqual $rules (index .Type.Markers "kubebuilder:validation:XValidation")) -}}
{{- range $rules -}}
{{ $br }}{{ template "rule" . }}{{ $br = "<br />" }}
{{- end -}}
{{- end -}}
{{- end -}}
