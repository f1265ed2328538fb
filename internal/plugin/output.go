package plugin

import (
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// printObjects writes obj as json or yaml, with its apiVersion and kind
// (which typed objects read from the API server lack).
func printObjects(w io.Writer, format string, obj runtime.Object) error {
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		if gvk, err := apiutil.GVKForObject(obj, scheme()); err == nil {
			obj.GetObjectKind().SetGroupVersionKind(gvk)
		}
	}
	if list, ok := obj.(interface{ GetObjectKind() schema.ObjectKind }); ok && list.GetObjectKind().GroupVersionKind().Kind == "RemoteCredentialList" {
		list.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "List"})
	}
	var b []byte
	var err error
	switch format {
	case "json":
		b, err = json.MarshalIndent(obj, "", "    ")
		b = append(b, '\n')
	case "yaml":
		b, err = yaml.Marshal(obj)
	default:
		return fmt.Errorf("output format %q: use json or yaml", format)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// manifests is a List of objs as they are written to Git: no status, no
// server-set fields.
func manifests(objs []runtime.Object) (*unstructured.UnstructuredList, error) {
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}}
	for _, obj := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		list.Items = append(list.Items, unstructured.Unstructured{Object: m})
	}
	return list, nil
}
