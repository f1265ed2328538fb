package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

// maxEvents is how many recent events status shows.
const maxEvents = 10

func newStatus(o *Options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a credential: its vendor metadata, conditions in words, expiry, recent events and, when it fails, what to do",
		Example: `  kubectl credsync status github-token -n team-a
  kubectl credsync status github-token -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return o.status(args[0], output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (the object); default: a description")
	return cmd
}

func (o *Options) status(name, output string) error {
	c, ns, err := o.clientIn()
	if err != nil {
		return err
	}
	ctx, cancel := ctx()
	defer cancel()
	rc := &v1alpha1.RemoteCredential{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rc); err != nil {
		return friendly(err, fmt.Sprintf("RemoteCredential %s/%s", ns, name))
	}
	if output != "" {
		return printObjects(o.Out, output, rc)
	}
	evs, missing := &eventsv1.EventList{}, ""
	if err := c.List(ctx, evs, client.InNamespace(ns)); apierrors.IsForbidden(err) {
		// Who may read credentials but not events still gets the rest.
		missing = "not shown: you may not list events in namespace " + ns
	} else if err != nil {
		return friendly(err, "")
	}
	return describe(o.Out, rc, eventsOf(evs.Items, rc), missing, o.Clock.Now())
}

// eventsOf are the events about rc, newest last, at most maxEvents.
func eventsOf(all []eventsv1.Event, rc *v1alpha1.RemoteCredential) []eventsv1.Event {
	var out []eventsv1.Event
	for _, e := range all {
		if e.Regarding.Kind == "RemoteCredential" && e.Regarding.Name == rc.Name && (e.Regarding.UID == "" || e.Regarding.UID == rc.UID) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return eventTime(out[i]).Before(eventTime(out[j])) })
	return out[max(0, len(out)-maxEvents):]
}

func eventTime(e eventsv1.Event) time.Time {
	if e.Series != nil {
		return e.Series.LastObservedTime.Time
	}
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// describe writes rc in words, with its events (or, when they could not
// be read, why not: eventsMissing).
func describe(w io.Writer, rc *v1alpha1.RemoteCredential, evs []eventsv1.Event, eventsMissing string, now time.Time) error {
	st := &rc.Status
	var lines [][2]string
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, [2]string{k, v})
		}
	}
	add("Name", rc.Namespace+"/"+rc.Name)
	provider := rc.Spec.ProviderRef.Kind
	if provider == "" {
		provider = v1alpha1.CredentialProviderKind
	}
	add("Provider", fmt.Sprintf("%s %s", provider, rc.Spec.ProviderRef.Name))
	add("Vendor", st.Vendor)
	id := rc.Spec.ID
	if rc.Spec.UserID != "" {
		id += " (user " + rc.Spec.UserID + ")"
	}
	add("Vendor ID", id)
	add("Vendor name", st.Name)
	if st.Description != st.Name {
		add("Description", st.Description)
	}
	add("Owner", st.Owner)
	add("Created", timeAndAgo(st.CreatedAt, now))
	add("Updated", timeAndAgo(st.UpdatedAt, now))
	if st.ExpiresAt != nil {
		add("Expires", st.ExpiresAt.UTC().Format(time.RFC3339)+" ("+expiry(st.ExpiresAt.Time, now)+")")
	} else if st.Vendor != "" {
		add("Expires", "never (the vendor reports no expiry)")
	}
	switch {
	case st.LastUsedAt != nil:
		add("Last used", timeAndAgo(st.LastUsedAt, now)+" (to the hour)")
	case st.NeverUsed:
		add("Last used", "never")
	}
	add("Token lifetime", st.TokenDuration)
	for _, kv := range vendorDetails(st) {
		add(kv[0], kv[1])
	}
	add("Refresh", "every "+rc.Spec.Refresh().String())
	if req := rc.Annotations[v1alpha1.SyncRequestedAtAnnotation]; req != "" {
		handled := "handled"
		if st.LastHandledSyncRequest != req {
			handled = "not handled yet"
		}
		add("Sync requested", req+" ("+handled+")")
	}
	if err := writeFields(w, lines); err != nil {
		return err
	}
	fmt.Fprintln(w, "Conditions:")
	if len(st.Conditions) == 0 || st.ObservedGeneration != rc.Generation {
		fmt.Fprintln(w, "  not synced yet: the operator has not looked at this generation (is it running? kubectl credsync check)")
	}
	for _, c := range st.Conditions {
		fmt.Fprintf(w, "  %s is %s since %s (%s): %s\n", c.Type, c.Status, relative(c.LastTransitionTime.Time, now), c.Reason, c.Message)
	}
	fmt.Fprintln(w, "Events:")
	switch {
	case eventsMissing != "":
		fmt.Fprintln(w, "  "+eventsMissing)
	case len(evs) == 0:
		fmt.Fprintln(w, "  none")
	}
	for _, e := range evs {
		fmt.Fprintf(w, "  %-12s %-8s %-18s %s\n", relative(eventTime(e), now), e.Type, e.Reason, e.Note)
	}
	if ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); ready != nil && ready.Status != metav1.ConditionTrue {
		fmt.Fprintln(w, "Next step:")
		for _, l := range strings.Split(nextStep(ready.Reason), "\n") {
			fmt.Fprintln(w, "  "+l)
		}
	}
	return nil
}

func timeAndAgo(t *metav1.Time, now time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339) + " (" + relative(t.Time, now) + ")"
}

// vendorDetails are the fields of the vendor's own status block, in words:
// "Mode: TEXT", whatever the vendor.
func vendorDetails(st *v1alpha1.RemoteCredentialStatus) [][2]string {
	b, err := json.Marshal(st)
	if err != nil {
		return nil
	}
	// Numbers as the JSON wrote them: a large ID must not print as 1.234567e+06.
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&fields) != nil {
		return nil
	}
	var out [][2]string
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		block, ok := fields[k].(map[string]any)
		if !ok {
			continue // the common fields, shown above
		}
		sub := make([]string, 0, len(block))
		for f := range block {
			sub = append(sub, f)
		}
		sort.Strings(sub)
		for _, f := range sub {
			out = append(out, [2]string{words(f), fmt.Sprint(block[f])})
		}
	}
	return out
}

// words turns a camelCase field name into words: ownerEmail → Owner email.
func words(field string) string {
	var b strings.Builder
	for i, r := range field {
		switch {
		case i == 0:
			b.WriteString(strings.ToUpper(string(r)))
		case r >= 'A' && r <= 'Z':
			b.WriteString(" " + strings.ToLower(string(r)))
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if strings.HasSuffix(s, " id") {
		s = strings.TrimSuffix(s, "id") + "ID"
	}
	return s
}

// writeFields writes "Key:   value" lines, the values aligned.
func writeFields(w io.Writer, lines [][2]string) error {
	width := 0
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(l[0]))
	}
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%-*s  %s\n", width+1, l[0]+":", l[1]); err != nil {
			return err
		}
	}
	return nil
}
