package plugin

import (
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/credsync/credsync/api/v1alpha1"
)

// printObjects writes obj as kubectl get -o json|yaml does, with its
// apiVersion and kind (which typed objects read from the API server lack);
// a list of credentials is a List, as kubectl prints one.
func printObjects(w io.Writer, format string, obj runtime.Object) error {
	if _, ok := obj.(*v1alpha1.RemoteCredentialList); ok {
		obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "List"})
	}
	flags := genericclioptions.NewJSONYamlPrintFlags()
	p, err := flags.ToPrinter(format)
	if err != nil {
		return fmt.Errorf("output format %q: use one of %s", format, strings.Join(flags.AllowedFormats(), ", "))
	}
	return printers.NewTypeSetter(scheme()).ToPrinter(p).PrintObj(obj, w)
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
