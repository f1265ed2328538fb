package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

// outcome is what a sync concluded, in condition terms.
type outcome struct {
	// Reason is the Ready reason.
	Reason  string
	Message string
	// Terminal: Stalled (waiting will not help); otherwise Reconciling
	// (a transient error) unless Reason is Synced.
	Terminal bool
}

// patchStatusIfChanged writes obj's status as a merge patch against
// before, and only when the status (given by status) changed: a reconcile
// that finds nothing new writes nothing. w records the write, for the
// next reconcile of obj to read it (statusWrites.get).
func patchStatusIfChanged[T client.Object](ctx context.Context, c client.Client, w *statusWrites, before, obj T, status func(T) any) error {
	if equality.Semantic.DeepEqual(status(before), status(obj)) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return err
	}
	w.wrote(obj, before.GetResourceVersion())
	return nil
}

// setCondition sets a condition with the object's generation; the
// transition time moves only when the status does.
func setCondition(conds *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

// setOutcome writes Ready, Stalled and Reconciling so that kstatus reads
// Current for a success, Failed for a terminal error and InProgress for a
// transient one.
func setOutcome(conds *[]metav1.Condition, generation int64, o outcome) {
	ready := metav1.ConditionFalse
	if o.Reason == v1alpha1.ReasonSynced || o.Reason == v1alpha1.ReasonValid {
		ready = metav1.ConditionTrue
	}
	setCondition(conds, generation, v1alpha1.ConditionReady, ready, o.Reason, o.Message)
	switch {
	case ready == metav1.ConditionTrue:
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
	case o.Terminal:
		setCondition(conds, generation, v1alpha1.ConditionStalled, metav1.ConditionTrue, o.Reason, o.Message)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionReconciling)
	default:
		setCondition(conds, generation, v1alpha1.ConditionReconciling, metav1.ConditionTrue, o.Reason, o.Message)
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionStalled)
	}
}
