package controllers

import (
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// Event reasons beyond the condition reasons (which are used as they are).
const (
	// eventRecovered: Ready turned True again after a failure.
	eventRecovered = "Recovered"
	// eventExpiring: the Expiring condition turned True.
	eventExpiring = "Expiring"
	// eventUnused: the Unused condition turned True.
	eventUnused = "Unused"
)

// Event actions (events.k8s.io requires one).
const (
	actionSync        = "Sync"
	actionCheckExpiry = "CheckExpiry"
	actionCheckUse    = "CheckUse"
	actionCheck       = "Check"
	actionInventory   = "Inventory"
)

// eventSpec is one event to emit.
type eventSpec struct {
	Type, Reason, Action, Note string
}

// emit records events about obj; a nil recorder records nothing.
func emit(rec events.EventRecorder, obj runtime.Object, evs []eventSpec) {
	if rec == nil {
		return
	}
	for _, e := range evs {
		rec.Eventf(obj, nil, e.Type, e.Reason, e.Action, "%s", e.Note)
	}
}

// readyTransition is the event for a change of the Ready condition's
// reason, or nil when the reason did not change. Turning Ready for the first
// time is a Normal event named after the reason, turning Ready again after
// a failure is Recovered, and any failure is a Warning named after its reason.
func readyTransition(before, after []metav1.Condition, action string) *eventSpec {
	was := meta.FindStatusCondition(before, v1alpha1.ConditionReady)
	now := meta.FindStatusCondition(after, v1alpha1.ConditionReady)
	if now == nil || (was != nil && was.Reason == now.Reason) {
		return nil
	}
	switch {
	case now.Status != metav1.ConditionTrue:
		return &eventSpec{Type: corev1.EventTypeWarning, Reason: now.Reason, Action: action, Note: now.Message}
	case was == nil:
		return &eventSpec{Type: corev1.EventTypeNormal, Reason: now.Reason, Action: action, Note: now.Message}
	default:
		return &eventSpec{Type: corev1.EventTypeNormal, Reason: eventRecovered, Action: action,
			Note: "recovered from " + was.Reason + ": " + now.Message}
	}
}

// credentialEvents are the events for what a reconcile changed in a
// RemoteCredential's status: transitions only, so a refresh that finds
// nothing new emits nothing.
func credentialEvents(before, after *v1alpha1.RemoteCredential) []eventSpec {
	var out []eventSpec
	if e := readyTransition(before.Status.Conditions, after.Status.Conditions, actionSync); e != nil {
		out = append(out, *e)
	} else if isReason(after.Status.Conditions, v1alpha1.ConditionReady, v1alpha1.ReasonSynced) {
		if changed := changedFields(&before.Status, &after.Status); len(changed) > 0 {
			out = append(out, eventSpec{Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonSynced, Action: actionSync,
				Note: "vendor metadata changed: " + strings.Join(changed, ", ")})
		}
	}
	if e := turnedTrue(before.Status.Conditions, after.Status.Conditions, v1alpha1.ConditionExpiring, eventExpiring, actionCheckExpiry); e != nil &&
		!isReason(after.Status.Conditions, v1alpha1.ConditionReady, v1alpha1.ReasonExpired) {
		out = append(out, *e)
	}
	if e := turnedTrue(before.Status.Conditions, after.Status.Conditions, v1alpha1.ConditionUnused, eventUnused, actionCheckUse); e != nil {
		out = append(out, *e)
	}
	return out
}

// turnedTrue is the Warning event (reason, action), noted with the
// condition's message, when the condition typ turned True from before to
// after; nil otherwise.
func turnedTrue(before, after []metav1.Condition, typ, reason, action string) *eventSpec {
	if meta.IsStatusConditionTrue(before, typ) || !meta.IsStatusConditionTrue(after, typ) {
		return nil
	}
	return &eventSpec{Type: corev1.EventTypeWarning, Reason: reason, Action: action, Note: meta.FindStatusCondition(after, typ).Message}
}

func isReason(conds []metav1.Condition, typ, reason string) bool {
	c := meta.FindStatusCondition(conds, typ)
	return c != nil && c.Reason == reason
}

// changedFields names the vendor metadata fields that differ, by their
// status field names (JSON), in the order the status declares them: every
// field but those the reconciler owns (vendors.WithOwned), whichever
// vendor wrote it.
func changedFields(a, b *v1alpha1.RemoteCredentialStatus) []string {
	// a's metadata with b's own fields: only metadata can differ from b.
	merged := vendors.WithOwned(a, b)
	va, vb := reflect.ValueOf(&merged).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	// Last use moves with every use: it is status, not news.
	merged.LastUsedAt = b.LastUsedAt
	for i := range va.NumField() {
		if !equality.Semantic.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
	}
	return out
}
